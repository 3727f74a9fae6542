"""Template explanations: offline, deterministic, and the fallback for every other explainer.

Patient messages use short sentences and everyday words, say what to do now, and say when to
call emergency services. They never name a diagnosis as certain and never mention medicines.
Clinician summaries give the numbers, the rule that fired, NEWS2 and its breakdown.
"""

from __future__ import annotations

from typing import Any

EMERGENCY_LINE = "If you feel very unwell, have chest pain or struggle to breathe, call 999 (or your local emergency number) now."
NOT_A_DOCTOR = "Vigil helps your care team watch over you; it does not replace them."

PATIENT_TEXT: dict[str, str] = {
    "hypoxaemia": "Your oxygen level has been lower than usual. Please sit upright and rest.",
    "tachycardia": "Your heart has been beating faster than usual while you rest. Please sit down and rest.",
    "bradycardia": "Your heart has been beating slower than usual. Please sit or lie down and rest.",
    "hypertensive_crisis": "Your blood pressure readings have been very high. Please sit quietly and rest.",
    "hypotension": "Your blood pressure readings have been low. Please sit or lie down, and stand up slowly.",
    "fever": "Your temperature has been higher than usual. Please rest and drink fluids.",
    "hypothermia": "Your temperature has been lower than usual. Please get warm and rest.",
    "tachypnoea": "You have been breathing faster than usual while resting. Please sit upright and rest.",
    "bradypnoea": "You have been breathing more slowly than usual.",
    "news2": "Several of your readings have changed together.",
    "anomaly": "Some of your readings look different from your usual pattern.",
    "rising_risk": "Your readings suggest your health may be changing.",
    "low_battery": "Your monitor's battery is low. Please charge it soon so we can keep watching over you.",
    "device_offline": "We have not received readings from your monitor for a while. Please check it is on, charged and worn.",
    "poor_signal": "Your monitor is not getting clear readings. Please check it sits snugly on your wrist.",
}

FOLLOW_UP: dict[str, str] = {
    "critical": "Your care team has been told and will contact you very soon.",
    "high": "Your care team has been told and will contact you soon.",
    "medium": "Your care team has been told and will check on you.",
    "low": "",
}

VALUE_LABELS: dict[str, tuple[str, str]] = {
    "hr_bpm": ("HR", "bpm"),
    "spo2_pct": ("SpO2", "%"),
    "rr_per_min": ("RR", "/min"),
    "temp_c": ("Temp", "°C"),
    "sbp_mmhg": ("SBP", "mmHg"),
    "dbp_mmhg": ("DBP", "mmHg"),
    "battery_pct": ("Battery", "%"),
    "hr_variability_bpm": ("HR variability", "bpm"),
    "activity_g": ("Activity", "g"),
    "silent_for_min": ("Silent for", "min"),
    "untrusted_for_min": ("Untrusted for", "min"),
    "risk_pct": ("Deterioration risk", "%"),
    "anomaly_score": ("Anomaly score", ""),
}
CONTRIBUTOR_LABELS: dict[str, tuple[str, str]] = {
    "hr": ("HR", "bpm"), "spo2": ("SpO2", "%"), "rr": ("RR", "/min"), "temp": ("Temp", "°C"), "sbp": ("SBP", "mmHg"),
}


def patient_message(alert: dict[str, Any]) -> str:
    """A calm, plain message for the patient (reading grade about 6)."""
    kind, severity = str(alert["kind"]), str(alert["severity"])
    parts = [PATIENT_TEXT.get(kind, "Some of your readings have changed.")]
    follow = FOLLOW_UP.get(severity, "")
    if follow and alert.get("category", "clinical") == "clinical":
        parts.append(follow)
    if alert.get("category", "clinical") == "clinical":
        parts.append(EMERGENCY_LINE)
    return " ".join(parts)


def clinician_summary(alert: dict[str, Any], baselines: dict[str, float] | None = None) -> str:
    """A concise summary: kind, severity, the triggering values, the rule, NEWS2 breakdown."""
    values = alert.get("values") or {}
    shown = []
    for key, value in values.items():
        if key.startswith("news2_"):
            continue
        label, unit = VALUE_LABELS.get(key, (key, ""))
        text = f"{label} {value}{(' ' + unit) if unit and not isinstance(value, bool) else ''}"
        if baselines and key in baselines:
            text += f" (baseline {baselines[key]:g})"
        shown.append(text)
    lines = [f"{str(alert['severity']).upper()} {alert['kind']}: {', '.join(shown) or 'see rule'}.", f"Rule: {alert['rule']}."]
    news2 = alert.get("news2")
    if news2:
        breakdown = ", ".join(f"{k} {v}" for k, v in dict(news2.get("parameters", {})).items())
        partial = f"; not observed: {', '.join(news2.get('missing', []))}" if news2.get("missing") else ""
        lines.append(f"NEWS2 {news2['score']} ({news2['band']}): {breakdown}{partial}.")
    drivers = []
    for c in alert.get("contributors") or []:
        label, unit = CONTRIBUTOR_LABELS.get(str(c.get("vital")), (str(c.get("feature")), ""))
        drivers.append(f"{label} {c.get('value')} {unit} vs baseline {c.get('baseline')} ({float(c.get('z', 0)):+.1f} SD)")
    if drivers:
        lines.append(f"Drivers: {'; '.join(drivers)}.")
    if alert.get("model_version"):
        lines.append(f"Model {alert['model_version']}.")
    return " ".join(lines)
