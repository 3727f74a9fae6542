"""One realistic alert of every kind, shaped exactly like `Alert.as_dict()` from the core.

For tests and demos of the explainer without running a cohort. The values, rules and NEWS2
blocks are copies of what the core raised in a simulated run; the ids are fake but shaped
like the real ones, so a test can check that none of them reaches the facts or a model.
"""

from __future__ import annotations

from typing import Any

_NEWS2_PARTIAL = {"score": 3, "band": "low-medium", "parameters": {"rr": 0, "spo2": 3, "air_or_oxygen": 0, "hr": 0, "temp": 0},
                  "missing": ["sbp", "consciousness"], "partial": True}
_NEWS2_FULL = {"score": 6, "band": "medium", "parameters": {"rr": 3, "spo2": 1, "air_or_oxygen": 0, "sbp": 1, "hr": 0,
                                                            "consciousness": 0, "temp": 1}, "missing": [], "partial": False}
_CONTRIBUTORS = [{"feature": "spo2_z", "vital": "spo2", "z": -7.1, "value": 84.0, "baseline": 96.3},
                 {"feature": "rr_z", "vital": "rr", "z": 4.1, "value": 22.0, "baseline": 15.6},
                 {"feature": "hr_z", "vital": "hr", "z": 2.9, "value": 90.0, "baseline": 72.3}]

# kind -> (category, severity, rule, values, with NEWS2, with model contributors)
_SPECS: dict[str, tuple[str, str, str, dict[str, Any], bool, bool]] = {
    "hypoxaemia": ("clinical", "critical", "SpO2 <= 91 % (target >= 96 % (scale 1))", {"spo2_pct": 84.0}, True, False),
    "tachycardia": ("clinical", "high", "fast irregular rhythm: heart rate >= 131 bpm at rest (or >= 150 bpm at any activity)",
                    {"hr_bpm": 143.0, "hr_variability_bpm": 9.4, "activity_g": 0.02, "irregular": True}, True, False),
    "bradycardia": ("clinical", "high", "heart rate <= 40 bpm", {"hr_bpm": 33.0}, True, False),
    "hypertensive_crisis": ("clinical", "high", "blood pressure >= 180/120 mmHg on repeat cuff readings",
                            {"sbp_mmhg": 206.0, "dbp_mmhg": 121.0}, True, False),
    "hypotension": ("clinical", "critical", "systolic blood pressure <= 90 mmHg on repeat cuff readings",
                    {"sbp_mmhg": 78.0, "dbp_mmhg": 0.0}, True, False),
    "fever": ("clinical", "medium", "temperature >= 38.1 °C", {"temp_c": 38.8}, True, False),
    "hypothermia": ("clinical", "high", "temperature <= 35 °C", {"temp_c": 34.6}, True, False),
    "tachypnoea": ("clinical", "high", "respiratory rate >= 25 /min at rest (or >= 30 /min at any activity)",
                   {"rr_per_min": 27.0, "activity_g": 0.03}, True, False),
    "bradypnoea": ("clinical", "critical", "respiratory rate <= 8 /min", {"rr_per_min": 7.0}, True, False),
    "news2": ("clinical", "high", "NEWS2 aggregate >= 5",
              {"news2_score": 6, "news2_band": "medium", "news2_rr": 3, "news2_spo2": 1, "news2_air_or_oxygen": 0,
               "news2_sbp": 1, "news2_hr": 0, "news2_consciousness": 0, "news2_temp": 1}, True, False),
    "anomaly": ("clinical", "medium", "pattern unusual for this patient (anomaly score >= 1, the 99.9th centile of their stable periods)",
                {"anomaly_score": 3.03}, True, True),
    "rising_risk": ("clinical", "high", "deterioration risk >= 50% (NEWS2 >= 5 or a clinical event within the hour)",
                    {"risk_pct": 87}, True, True),
    "low_battery": ("technical", "low", "device battery <= 15 %", {"battery_pct": 14.5}, True, False),
    "device_offline": ("technical", "low", "no readings for more than 10 min", {"silent_for_min": 12.4}, False, False),
    "poor_signal": ("technical", "low", "sensor readings untrusted (off skin, stuck or moving) for 20 min",
                    {"untrusted_for_min": 21.0}, False, False),
    "not_monitored": ("technical", "medium", "every reading from the monitor is refused: its data is not in the "
                      "expected format", {"cause": "rejected", "reason": "schema_invalid"}, False, False),
}


def sample_alert(kind: str, **overrides: Any) -> dict[str, Any]:
    """An `Alert.as_dict()` of `kind`, with fake ids; keyword arguments replace fields."""
    category, severity, rule, values, with_news2, with_model = _SPECS[kind]
    news2 = _NEWS2_FULL if kind in ("news2", "tachypnoea") else _NEWS2_PARTIAL
    alert: dict[str, Any] = {
        "alert_id": "al-5a60bc2bf3ebde6e7b15", "patient_id": "pt-4817", "kind": kind, "category": category,
        "severity": severity, "rule": rule, "values": dict(values), "onset_t": 1800000825.0, "raised_t": 1800001125.0,
        "news2": dict(news2) if with_news2 else None,
        "contributors": [dict(c) for c in _CONTRIBUTORS] if with_model else [],
        "model_version": "vigil-models-1+bb235a6e91" if with_model else None,
        "escalation_level": 0, "acknowledged_t": None, "cleared_t": None,
    }
    alert.update(overrides)
    return alert


def sample_alerts() -> list[dict[str, Any]]:
    """One alert of every kind the core raises."""
    return [sample_alert(kind) for kind in _SPECS]


KINDS: tuple[str, ...] = tuple(_SPECS)
