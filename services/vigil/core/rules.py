"""Alert rules: each looks at a patient's current vital signs and says active, clear or unknown.

A rule has a trigger threshold and a looser clear threshold (hysteresis), and says which
evidence it used (the time of the newest value), so the policy can demand several distinct
readings before firing. `UNKNOWN` means the inputs are missing or untrusted: the policy never
fires and never clears on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from vigil.core.events import Category, Severity
from vigil.core.news2 import News2Score
from vigil.core.profile import ClinicalContext

ACTIVE, BETWEEN, CLEAR, UNKNOWN = 2, 1, 0, -1


@dataclass(slots=True)
class VitalSigns:
    """The current picture of one patient, as the rules see it (smoothed, trusted values)."""

    t: float
    hr: float | None = None
    hr_t: float = 0.0
    hr_variability: float = 0.0
    spo2: float | None = None
    spo2_t: float = 0.0
    rr: float | None = None
    rr_t: float = 0.0
    temp: float | None = None
    temp_t: float = 0.0
    sbp: float | None = None
    dbp: float | None = None
    bp_t: float = 0.0
    activity_g: float = 0.0
    battery: float | None = None
    battery_t: float = 0.0
    untrusted_for_s: float = 0.0
    untrusted_t: float = 0.0
    news2: News2Score | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    values: dict[str, float | int | str | bool]
    rule: str


Outcome = tuple[int, float, Finding | None]
_UNKNOWN: Outcome = (UNKNOWN, 0.0, None)


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """Population defaults; personal usual ranges widen the heart-rate limits."""

    spo2_low_scale1: float = 91
    spo2_critical_scale1: float = 85
    spo2_clear_scale1: float = 94
    spo2_low_scale2: float = 85
    spo2_critical_scale2: float = 80
    spo2_clear_scale2: float = 88
    hr_high_rest: float = 131
    hr_high_any: float = 150
    hr_clear_high: float = 110
    rest_activity_g: float = 0.15
    irregular_variability_bpm: float = 8.0
    hr_low: float = 40
    hr_critical_low: float = 30
    hr_clear_low_margin: float = 10
    sbp_crisis: float = 180
    dbp_crisis: float = 120
    sbp_critical: float = 220
    sbp_clear_high: float = 160
    dbp_clear_high: float = 100
    sbp_low: float = 90
    sbp_critical_low: float = 80
    sbp_clear_low: float = 100
    temp_fever: float = 38.1
    temp_high_fever: float = 39.1
    temp_clear_fever: float = 37.8
    temp_low: float = 35.0
    temp_clear_low: float = 35.5
    rr_high: float = 25
    rr_high_any: float = 30
    rr_clear_high: float = 21
    rr_low: float = 8
    rr_clear_low: float = 11
    news2_high: int = 5
    news2_critical: int = 7
    news2_clear: int = 3
    battery_low: float = 15
    battery_clear: float = 30
    poor_signal_after_s: float = 20 * 60.0


DEFAULT_THRESHOLDS = AlertThresholds()


@dataclass(frozen=True, slots=True)
class RuleSpec:
    kind: str
    category: Category
    evaluate: Callable[[VitalSigns, AlertThresholds, ClinicalContext], Outcome] = field(repr=False)
    persist_s: float
    min_evidence: int
    clear_s: float
    clear_min_evidence: int


def _r(x: float) -> float:
    return round(x, 1)


def hypoxaemia(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.spo2 is None:
        return _UNKNOWN
    if ctx.spo2_scale == 2:
        low, critical, clear, target = th.spo2_low_scale2, th.spo2_critical_scale2, th.spo2_clear_scale2, "88-92 % (scale 2)"
    else:
        low, critical, clear, target = th.spo2_low_scale1, th.spo2_critical_scale1, th.spo2_clear_scale1, ">= 96 % (scale 1)"
    if s.spo2 <= low:
        severity: Severity = "critical" if s.spo2 <= critical else "high"
        return ACTIVE, s.spo2_t, Finding(severity, {"spo2_pct": _r(s.spo2)}, f"SpO2 <= {low:g} % (target {target})")
    return (CLEAR if s.spo2 >= clear else BETWEEN), s.spo2_t, None


def tachycardia(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.hr is None:
        return _UNKNOWN
    usual = ctx.usual_ranges.get("hr")
    at_rest_limit = max(th.hr_high_rest, usual.high + 10) if usual else th.hr_high_rest
    at_rest = s.activity_g < th.rest_activity_g
    if (at_rest and s.hr >= at_rest_limit) or s.hr >= th.hr_high_any:
        irregular = s.hr_variability >= th.irregular_variability_bpm
        values: dict[str, float | int | str | bool] = {
            "hr_bpm": _r(s.hr), "hr_variability_bpm": _r(s.hr_variability),
            "activity_g": round(s.activity_g, 2), "irregular": irregular,
        }
        rhythm = "fast irregular rhythm: " if irregular else ""
        rule = f"{rhythm}heart rate >= {at_rest_limit:g} bpm at rest (or >= {th.hr_high_any:g} bpm at any activity)"
        return ACTIVE, s.hr_t, Finding("high", values, rule)
    return (CLEAR if s.hr <= th.hr_clear_high else BETWEEN), s.hr_t, None


def bradycardia(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.hr is None:
        return _UNKNOWN
    usual = ctx.usual_ranges.get("hr")
    limit = min(th.hr_low, usual.low - 5) if usual else th.hr_low
    if s.hr <= limit:
        severity: Severity = "critical" if s.hr <= th.hr_critical_low else "high"
        return ACTIVE, s.hr_t, Finding(severity, {"hr_bpm": _r(s.hr)}, f"heart rate <= {limit:g} bpm")
    return (CLEAR if s.hr >= limit + th.hr_clear_low_margin else BETWEEN), s.hr_t, None


def hypertensive_crisis(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.sbp is None or s.dbp is None:
        return _UNKNOWN
    if s.sbp >= th.sbp_crisis or s.dbp >= th.dbp_crisis:
        severity: Severity = "critical" if s.sbp >= th.sbp_critical else "high"
        values = {"sbp_mmhg": _r(s.sbp), "dbp_mmhg": _r(s.dbp)}
        return ACTIVE, s.bp_t, Finding(severity, values, f"blood pressure >= {th.sbp_crisis:g}/{th.dbp_crisis:g} mmHg on repeat cuff readings")
    calm = s.sbp < th.sbp_clear_high and s.dbp < th.dbp_clear_high
    return (CLEAR if calm else BETWEEN), s.bp_t, None


def hypotension(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.sbp is None:
        return _UNKNOWN
    if s.sbp <= th.sbp_low:
        severity: Severity = "critical" if s.sbp <= th.sbp_critical_low else "high"
        values = {"sbp_mmhg": _r(s.sbp), "dbp_mmhg": _r(s.dbp or 0.0)}
        return ACTIVE, s.bp_t, Finding(severity, values, f"systolic blood pressure <= {th.sbp_low:g} mmHg on repeat cuff readings")
    return (CLEAR if s.sbp >= th.sbp_clear_low else BETWEEN), s.bp_t, None


def fever(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.temp is None:
        return _UNKNOWN
    if s.temp >= th.temp_fever:
        severity: Severity = "high" if s.temp >= th.temp_high_fever else "medium"
        return ACTIVE, s.temp_t, Finding(severity, {"temp_c": _r(s.temp)}, f"temperature >= {th.temp_fever:g} °C")
    return (CLEAR if s.temp <= th.temp_clear_fever else BETWEEN), s.temp_t, None


def hypothermia(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.temp is None:
        return _UNKNOWN
    if s.temp <= th.temp_low:
        return ACTIVE, s.temp_t, Finding("high", {"temp_c": _r(s.temp)}, f"temperature <= {th.temp_low:g} °C")
    return (CLEAR if s.temp >= th.temp_clear_low else BETWEEN), s.temp_t, None


def tachypnoea(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.rr is None:
        return _UNKNOWN
    if (s.rr >= th.rr_high and s.activity_g < th.rest_activity_g) or s.rr >= th.rr_high_any:
        values = {"rr_per_min": _r(s.rr), "activity_g": round(s.activity_g, 2)}
        rule = f"respiratory rate >= {th.rr_high:g} /min at rest (or >= {th.rr_high_any:g} /min at any activity)"
        return ACTIVE, s.rr_t, Finding("high", values, rule)
    return (CLEAR if s.rr <= th.rr_clear_high else BETWEEN), s.rr_t, None


def bradypnoea(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.rr is None:
        return _UNKNOWN
    if s.rr <= th.rr_low:
        return ACTIVE, s.rr_t, Finding("critical", {"rr_per_min": _r(s.rr)}, f"respiratory rate <= {th.rr_low:g} /min")
    return (CLEAR if s.rr >= th.rr_clear_low else BETWEEN), s.rr_t, None


def news2_aggregate(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    news2 = s.news2
    if news2 is None or not news2.parameters:
        return _UNKNOWN
    if s.activity_g >= th.rest_activity_g:
        # NEWS2 is charted at rest; during exertion neither raise nor clear on it.
        return BETWEEN, s.t, None
    if news2.score >= th.news2_high:
        severity: Severity = "critical" if news2.score >= th.news2_critical else "high"
        values: dict[str, float | int | str | bool] = {"news2_score": news2.score, "news2_band": news2.band}
        for name, points in news2.parameters.items():
            values[f"news2_{name}"] = points
        partial = " (partial: " + ", ".join(news2.missing) + " not observed)" if news2.partial else ""
        return ACTIVE, s.t, Finding(severity, values, f"NEWS2 aggregate >= {th.news2_high}{partial}")
    return (CLEAR if news2.score <= th.news2_clear else BETWEEN), s.t, None


def low_battery(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.battery is None:
        return _UNKNOWN
    if s.battery <= th.battery_low:
        return ACTIVE, s.battery_t, Finding("low", {"battery_pct": _r(s.battery)}, f"device battery <= {th.battery_low:g} %")
    return (CLEAR if s.battery >= th.battery_clear else BETWEEN), s.battery_t, None


def poor_signal(s: VitalSigns, th: AlertThresholds, ctx: ClinicalContext) -> Outcome:
    if s.untrusted_for_s >= th.poor_signal_after_s:
        values = {"untrusted_for_min": round(s.untrusted_for_s / 60, 1)}
        return ACTIVE, s.untrusted_t, Finding("low", values, "sensor readings untrusted (off skin, stuck or moving) for 20 min")
    return (CLEAR if s.untrusted_for_s == 0 else BETWEEN), s.untrusted_t, None


RULES: tuple[RuleSpec, ...] = (
    RuleSpec("hypoxaemia", "clinical", hypoxaemia, persist_s=60, min_evidence=3, clear_s=300, clear_min_evidence=3),
    RuleSpec("tachycardia", "clinical", tachycardia, persist_s=120, min_evidence=3, clear_s=300, clear_min_evidence=3),
    RuleSpec("bradycardia", "clinical", bradycardia, persist_s=120, min_evidence=3, clear_s=300, clear_min_evidence=3),
    RuleSpec("hypertensive_crisis", "clinical", hypertensive_crisis, persist_s=0, min_evidence=2, clear_s=0, clear_min_evidence=2),
    RuleSpec("hypotension", "clinical", hypotension, persist_s=0, min_evidence=2, clear_s=0, clear_min_evidence=2),
    RuleSpec("fever", "clinical", fever, persist_s=600, min_evidence=3, clear_s=900, clear_min_evidence=3),
    RuleSpec("hypothermia", "clinical", hypothermia, persist_s=600, min_evidence=3, clear_s=900, clear_min_evidence=3),
    RuleSpec("tachypnoea", "clinical", tachypnoea, persist_s=180, min_evidence=3, clear_s=300, clear_min_evidence=3),
    RuleSpec("bradypnoea", "clinical", bradypnoea, persist_s=60, min_evidence=3, clear_s=300, clear_min_evidence=3),
    RuleSpec("news2", "clinical", news2_aggregate, persist_s=300, min_evidence=3, clear_s=900, clear_min_evidence=3),
    RuleSpec("low_battery", "technical", low_battery, persist_s=0, min_evidence=1, clear_s=0, clear_min_evidence=1),
    RuleSpec("poor_signal", "technical", poor_signal, persist_s=0, min_evidence=1, clear_s=0, clear_min_evidence=1),
)
RULE_KINDS = tuple(spec.kind for spec in RULES) + ("device_offline", "not_monitored")
