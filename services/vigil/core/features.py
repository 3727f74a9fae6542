"""The feature vector the learned models see: one patient's state at one moment, as floats.

One pure function, `patient_features`, used by training, evaluation and the live processor
alike, so what is trained is what is served. It reads a PatientMonitor's state (tracks,
baselines, activity, NEWS2) at time t and changes nothing. Plain Python, no numpy: the
scoring shell turns the lists into arrays.

Deviations are measured against the patient's own learned baseline (z-scores), trends as
fast minus slow exponential averages in baseline standard deviations. A vital that is not
observed (too old or untrusted) gets a z-score and trend of 0 and its `_missing` flag set, so
a missing value never looks like a deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vigil.core.news2 import PARAMETERS as NEWS2_PARAMETERS

if TYPE_CHECKING:  # the monitor imports nothing from here; avoid a cycle at runtime
    from vigil.core.patient import PatientMonitor

# Vitals with a personal baseline, in feature order. Diastolic pressure follows systolic too
# closely to add much, so it is left out.
FEATURE_VITALS: tuple[str, ...] = ("hr", "spo2", "rr", "temp", "sbp")
Z_CLIP = 12.0
MAX_AGE_FEATURE_S = 6 * 3600.0

FEATURE_NAMES: tuple[str, ...] = (
    *(f"{v}_z" for v in FEATURE_VITALS),
    *(f"{v}_trend_z" for v in FEATURE_VITALS),
    *(f"{v}_value" for v in FEATURE_VITALS),
    *(f"{v}_missing" for v in FEATURE_VITALS),
    "hr_variability_bpm",
    "hr_variability_z",
    "hr_age_min",
    "temp_age_min",
    "bp_age_h",
    *(f"news2_{p}" for p in NEWS2_PARAMETERS),
    "news2_score",
    "news2_missing",
    "activity_g",
    "untrusted_min",
    "spo2_scale2",
    "baseline_maturity",
)
N_FEATURES = len(FEATURE_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Which features are deviations from the patient's own baseline (for 'why did it fire').
DEVIATION_FEATURES: tuple[str, ...] = tuple(f"{v}_z" for v in FEATURE_VITALS)


def _clip(x: float) -> float:
    return Z_CLIP if x > Z_CLIP else (-Z_CLIP if x < -Z_CLIP else x)


def patient_features(monitor: "PatientMonitor", t: float) -> list[float]:
    """The feature vector (FEATURE_NAMES order) of one patient at time t. Reads, never writes.

    Current values follow `PatientMonitor.vital_signs` (trusted values within their maximum
    age). NEWS2 is the one the core charted with the newest reading when t is that reading's
    time (the live case: no second NEWS2 per batch), else it is scored afresh for t.
    """
    from vigil.core.patient import MAX_AGE_S

    tracks = monitor.tracks
    hr_track, sbp_track = tracks["hr"], tracks["sbp"]
    sbp = sbp_track.last_value if t - sbp_track.last_t <= MAX_AGE_S["sbp"] else None
    z: list[float] = []
    trend: list[float] = []
    value: list[float] = []
    missing: list[float] = []
    for name in FEATURE_VITALS:
        track = tracks[name]
        now = sbp if name == "sbp" else track.current(t, MAX_AGE_S[name])
        if now is None:
            z.append(0.0)
            trend.append(0.0)
            value.append(track.baseline_mean)
            missing.append(1.0)
            continue
        var = track.baseline_var
        sd = math.sqrt(var) if var > 1e-12 else 1e-6
        z.append(_clip((now - track.baseline_mean) / sd))
        trend.append(_clip((track.fast - track.slow) / sd))
        value.append(now)
        missing.append(0.0)
    news2 = monitor.last_news2 if t == monitor.last_seen_t else monitor.vital_signs(t).news2
    points = news2.parameters if news2 is not None else {}
    hr_sd = max(hr_track.baseline_sd(), 1e-6)
    variability = hr_track.variability if not missing[0] else 0.0
    untrusted_since = monitor.untrusted_since
    untrusted_s = 0.0 if untrusted_since is None else min(t - untrusted_since, MAX_AGE_FEATURE_S)
    return [
        *z,
        *trend,
        *value,
        *missing,
        variability,
        _clip(variability / hr_sd),
        _age(t, hr_track.last_t) / 60.0,
        _age(t, tracks["temp"].last_t) / 60.0,
        _age(t, sbp_track.last_t) / 3600.0,
        *[float(points.get(p, 0)) for p in NEWS2_PARAMETERS],
        float(news2.score) if news2 is not None else 0.0,
        float(len(news2.missing)) if news2 is not None else float(len(NEWS2_PARAMETERS)),
        monitor.activity,
        untrusted_s / 60.0,
        1.0 if monitor.context.spo2_scale == 2 else 0.0,
        math.log1p(hr_track.baseline_n),
    ]


def _age(t: float, last_t: float) -> float:
    if last_t == -math.inf:
        return MAX_AGE_FEATURE_S
    return min(max(t - last_t, 0.0), MAX_AGE_FEATURE_S)


@dataclass(frozen=True, slots=True)
class Contributor:
    """One feature that drove a model alert: a vital's deviation from the patient's baseline."""

    feature: str
    vital: str
    z: float
    value: float
    baseline: float

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "vital": self.vital, "z": round(self.z, 1),
                "value": round(self.value, 1), "baseline": round(self.baseline, 1)}


def top_deviations(monitor: "PatientMonitor", features: list[float], k: int = 3, min_abs_z: float = 1.5) -> list[Contributor]:
    """The k largest deviations from the patient's own baseline, largest first: those with
    |z| >= min_abs_z, or else the single largest one, so an alert always names something."""
    ranked = []
    for name, vital in zip(DEVIATION_FEATURES, FEATURE_VITALS):
        if features[INDEX[f"{vital}_missing"]]:
            continue
        zval = features[INDEX[name]]
        ranked.append(Contributor(name, vital, zval, features[INDEX[f"{vital}_value"]], monitor.tracks[vital].baseline_mean))
    ranked.sort(key=lambda c: -abs(c.z))
    strong = [c for c in ranked if abs(c.z) >= min_abs_z]
    return strong[:k] if strong else ranked[:1]
