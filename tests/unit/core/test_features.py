"""The feature vector: the same pure function for training and serving."""

import copy
import math

from vigil.core.features import FEATURE_NAMES, INDEX, N_FEATURES, patient_features, top_deviations
from vigil.core.patient import PatientMonitor
from vigil.core.reading import Reading

T0 = 1_800_000_000.0


def feed(monitor, seconds, start=T0, seq=0, **vitals):
    t = start
    while t < start + seconds:
        seq += 1
        values = {"hr": 72.0, "spo2": 97.0, "rr": 15.0, "temp": 36.8, "accel": 0.02, "contact": True}
        values.update(vitals)
        values["hr"] += seq % 3 - 1  # never perfectly flat (that is a stuck sensor)
        monitor.observe(Reading("pt-1", "wr-1", t, seq, **values))
        t += 15.0
    return t, seq


def test_names_and_vector_agree():
    monitor = PatientMonitor("pt-1")
    feed(monitor, 600)
    x = patient_features(monitor, monitor.last_seen_t)
    assert len(x) == N_FEATURES == len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert all(isinstance(v, float) and math.isfinite(v) for v in x)


def test_features_read_but_never_change_the_monitor():
    monitor = PatientMonitor("pt-1")
    feed(monitor, 1800)
    before = copy.deepcopy({name: getattr(monitor, name) for name in ("tracks", "rules", "activity", "last_news2")})
    a = patient_features(monitor, monitor.last_seen_t)
    b = patient_features(monitor, monitor.last_seen_t)
    after = {name: getattr(monitor, name) for name in ("tracks", "rules", "activity", "last_news2")}
    assert a == b
    for name in ("hr", "spo2", "temp"):
        assert before["tracks"][name].baseline_mean == after["tracks"][name].baseline_mean
        assert before["tracks"][name].recent == after["tracks"][name].recent


def test_stable_patient_is_near_baseline_and_a_fast_heart_is_a_deviation():
    monitor = PatientMonitor("pt-1")
    t, seq = feed(monitor, 6 * 3600)
    calm = patient_features(monitor, monitor.last_seen_t)
    assert abs(calm[INDEX["hr_z"]]) < 1.5 and abs(calm[INDEX["spo2_z"]]) < 1.5
    feed(monitor, 900, start=t, seq=seq, hr=125.0)
    fast = patient_features(monitor, monitor.last_seen_t)
    assert fast[INDEX["hr_z"]] > 3 and fast[INDEX["hr_trend_z"]] > 0
    assert fast[INDEX["news2_hr"]] == 2.0 and fast[INDEX["hr_value"]] >= 120
    top = top_deviations(monitor, fast)
    assert top[0].vital == "hr" and top[0].as_dict()["feature"] == "hr_z"


def test_missing_vital_is_flagged_not_a_deviation():
    monitor = PatientMonitor("pt-1")
    feed(monitor, 600)
    later = monitor.last_seen_t + 3 * 3600  # every optical value is now too old
    x = patient_features(monitor, later)
    assert x[INDEX["hr_missing"]] == 1.0 and x[INDEX["hr_z"]] == 0.0
    assert x[INDEX["sbp_missing"]] == 1.0  # never measured
    assert x[INDEX["hr_age_min"]] >= 180
