"""The alert policy's timing: persistence, hysteresis, one open alert, suppression."""

from vigil.core.events import AlertCleared, AlertRaised, AlertSeverityChanged, stable_alert_id
from vigil.core.patient import PatientMonitor
from vigil.core.profile import ClinicalContext, UsualRange
from vigil.core.reading import Reading

T0 = 1_800_000_000.0


class Stream:
    """Feeds one patient a reading every `period` seconds and collects events by type."""

    def __init__(self, monitor: PatientMonitor, period: float = 15.0) -> None:
        self.monitor, self.period, self.t, self.seq, self.events = monitor, period, T0, 0, []

    def feed(self, seconds: float, **vitals) -> list:
        new = []
        end = self.t + seconds
        while self.t < end:
            self.seq += 1
            values = {"hr": 72.0, "spo2": 97.0, "rr": 15.0, "temp": 36.8, "accel": 0.02, "battery": 80.0, "contact": True}
            values.update(vitals)
            values["hr"] += self.seq % 3 - 1  # real sensors are never perfectly flat (that is a stuck sensor)
            assessment = self.monitor.observe(Reading("pt-1", "wr-1", self.t, self.seq, **values))
            new.extend(assessment.events)
            self.t += self.period
        self.events.extend(new)
        return new

    def of(self, kind: str, event_type=AlertRaised) -> list:
        return [e for e in self.events if isinstance(e, event_type) and e.alert.kind == kind]


def test_calm_patient_raises_nothing():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(6 * 3600)
    assert stream.events == []


def test_hypoxaemia_waits_for_persistence_then_fires_once():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    # Below 92 % for 45 s: the median needs 3 low values, then 60 s and 3 pieces of evidence.
    assert not stream.feed(45, spo2=88.0)
    stream.feed(600, spo2=88.0)
    raised = stream.of("hypoxaemia")
    assert len(raised) == 1, "one open alert per patient and kind"
    alert = raised[0].alert
    assert alert.severity == "high" and alert.values == {"spo2_pct": 88.0} and "SpO2 <= 91" in alert.rule
    assert 60 <= alert.raised_t - alert.onset_t <= 120
    assert alert.alert_id == stable_alert_id("pt-1", "hypoxaemia", alert.onset_t)
    assert alert.news2 is not None and alert.news2["parameters"]["spo2"] == 3


def test_brief_dip_does_not_fire():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(45, spo2=88.0)
    stream.feed(600)
    assert stream.of("hypoxaemia") == []


def test_hysteresis_clear_needs_the_clear_threshold_held():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(300, spo2=88.0)
    assert len(stream.of("hypoxaemia")) == 1
    stream.feed(1800, spo2=93.0)  # above the trigger, below the clear threshold: stays open
    assert stream.of("hypoxaemia", AlertCleared) == []
    stream.feed(200, spo2=96.0)  # clear needs 300 s at >= 94 %
    assert stream.of("hypoxaemia", AlertCleared) == []
    stream.feed(200, spo2=96.0)
    assert len(stream.of("hypoxaemia", AlertCleared)) == 1
    stream.feed(600, spo2=88.0)  # a new episode is a new alert with a new id
    raised = stream.of("hypoxaemia")
    assert len(raised) == 2 and raised[0].alert.alert_id != raised[1].alert.alert_id


def test_severity_rises_after_persistence():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(300, spo2=89.0)
    stream.feed(300, spo2=82.0)
    changes = stream.of("hypoxaemia", AlertSeverityChanged)
    assert changes and changes[0].previous == "high" and changes[0].alert.severity == "critical"


def test_motion_artefact_suppresses_alerts():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(900, hr=175.0, spo2=80.0, accel=0.9)  # vigorous movement scrambles optics
    assert stream.of("tachycardia") == [] and stream.of("hypoxaemia") == []


def test_off_skin_for_long_raises_a_technical_alert_not_a_clinical_one():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(1500, contact=False, hr=40.0, spo2=70.0)
    assert stream.of("bradycardia") == [] and stream.of("hypoxaemia") == []
    (signal,) = stream.of("poor_signal")
    assert signal.alert.category == "technical"


def test_exertion_does_not_raise_tachycardia_but_rest_does():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(900, hr=140.0, accel=0.3)
    assert stream.of("tachycardia") == []
    stream.feed(900, hr=140.0, accel=0.02)
    assert len(stream.of("tachycardia")) == 1


def test_personal_usual_range_lowers_the_bradycardia_limit():
    athlete = PatientMonitor("pt-1", ClinicalContext(usual_ranges={"hr": UsualRange(40, 70)}))
    stream = Stream(athlete)
    stream.feed(1800, hr=38.0)
    assert stream.of("bradycardia") == []
    stream.feed(900, hr=33.0)
    assert len(stream.of("bradycardia")) == 1


def test_raised_alert_carries_baselines_and_trends():
    """Escalation lives on incidents now (test_incident.py); an alert carries its context."""
    monitor = PatientMonitor("pt-1")
    stream = Stream(monitor)
    stream.feed(600)
    stream.feed(300, spo2=88.0)
    alert = stream.of("hypoxaemia")[0].alert
    assert 95.0 <= alert.baselines["spo2"] <= 99.0  # learned while stable, before the drop
    assert alert.trends["spo2"] < 0  # falling
    assert alert.as_dict()["baselines"] == alert.baselines


def test_silent_device_raises_offline_and_clears_on_return():
    monitor = PatientMonitor("pt-1")
    stream = Stream(monitor)
    stream.feed(600)
    last = stream.t - stream.period
    assert not monitor.tick(last + 14 * 60)
    (offline,) = [e for e in monitor.tick(last + 16 * 60) if isinstance(e, AlertRaised)]
    assert offline.alert.kind == "device_offline" and offline.alert.category == "technical"
    assert not [e for e in monitor.tick(last + 30 * 60) if isinstance(e, AlertRaised)]
    stream.t = last + 40 * 60
    cleared = [e for e in stream.feed(15) if isinstance(e, AlertCleared)]
    assert cleared and cleared[0].alert.kind == "device_offline"


def test_hypertensive_crisis_needs_two_cuff_readings():
    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(600)
    stream.feed(15, sbp=200.0, dbp=125.0)
    stream.feed(600)
    assert stream.of("hypertensive_crisis") == []
    stream.feed(15, sbp=205.0, dbp=126.0)
    (raised,) = stream.of("hypertensive_crisis")
    assert raised.alert.values == {"sbp_mmhg": 205.0, "dbp_mmhg": 126.0}


def test_scale2_patient_is_not_alarmed_at_target():
    copd = PatientMonitor("pt-1", ClinicalContext(spo2_scale=2))
    stream = Stream(copd)
    stream.feed(3600, spo2=89.0, rr=19.0)
    assert stream.of("hypoxaemia") == [] and stream.of("news2") == []


def test_stuck_sensor_is_flagged_flat_line():
    monitor = PatientMonitor("pt-1")
    flags = set()
    for seq in range(1, 30):
        flags.update(monitor.observe(Reading("pt-1", "wr-1", T0 + 15 * seq, seq, hr=70.0, spo2=97.0)).flags)
    assert "flat_line" in flags


def test_state_stays_small():
    import pickle

    stream = Stream(PatientMonitor("pt-1"))
    stream.feed(3600)
    assert len(pickle.dumps(stream.monitor)) < 20_000
