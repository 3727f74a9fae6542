"""The words of a notification: subject, body and structured payload, per audience and language.

Clinician and console messages say what happened to the incident (opened, worse, escalated,
reminder…) and carry the clinician summary of the alert behind it. Patient messages are the
calm patient text of that alert, in the patient's language. Texts come from the template
explainer, so a message never waits for a language model (the richer text follows later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vigil.core.events import SEVERITY_RANK, Alert
from vigil.core.incident import Incident, IncidentEvent
from vigil.core.notification import NotificationIntent
from vigil.shell.explain.templates import AlertTexts

# (alert, language) -> its words in that language
TextSource = Callable[[Alert, str], AlertTexts]
# What a notification's payload tells of the alert behind it.
PAYLOAD_ALERT_FIELDS = ("alert_id", "kind", "severity", "rule", "values", "news2", "raised_t", "model_version")

HEADLINE_EN = {
    "opened": "New incident", "worsened": "Incident worse", "joined": "Incident update", "eased": "Incident easing",
    "alert_cleared": "Alert cleared", "escalated": "ESCALATED, not yet acknowledged",
    "reminder": "Reminder, not yet acknowledged", "acknowledged": "Acknowledged", "resolved": "Resolved",
    "auto_resolved": "Resolved (all alerts cleared)", "patient_ok": "Patient answered: I'm OK",
    "patient_help": "PATIENT ASKS FOR HELP",
}
HEADLINE_ZH = {
    "opened": "新事件", "worsened": "事件加重", "joined": "事件更新", "eased": "事件缓解", "alert_cleared": "警报解除",
    "escalated": "已升级，尚未确认", "reminder": "提醒：尚未确认", "acknowledged": "已确认", "resolved": "已解决",
    "auto_resolved": "已解决（警报均已解除）", "patient_ok": "患者回复：我没事", "patient_help": "患者请求帮助",
}
PATIENT_PREFIX = {"en": "Vigil: ", "zh": "Vigil：", }


def lead_alert(incident: Incident, alerts: Mapping[str, Alert]) -> Alert | None:
    """The alert that best explains the incident now: the most severe active one, else the latest."""
    candidates = [(alert_id, m) for alert_id, m in incident.members.items() if alert_id in alerts]
    if not candidates:
        return None
    active = [c for c in candidates if c[1].active] or candidates
    alert_id, _ = max(active, key=lambda c: (SEVERITY_RANK.get(c[1].severity, 0), float(alerts[c[0]].raised_t or 0)))
    return alerts[alert_id]


def render(intent: NotificationIntent, event: IncidentEvent, alert: Alert | None,
           texts: TextSource) -> tuple[str, str, dict[str, Any]]:
    """Subject, body and payload of one notification."""
    incident = event.incident
    language = intent.language if intent.language in ("en", "zh") else "en"
    headline = (HEADLINE_ZH if language == "zh" else HEADLINE_EN)[event.kind]
    words = texts(alert, language) if alert is not None else AlertTexts("", "")
    patient_text, clinician_text = words.patient, words.clinician
    kinds = sorted({m.kind for m in incident.members.values() if m.active}) or sorted({m.kind for m in incident.members.values()})
    if intent.audience == "patient":
        subject = "Vigil" if language == "en" else "Vigil 健康提醒"
        body = PATIENT_PREFIX.get(language, "Vigil: ") + patient_text
    else:
        subject = f"[Vigil {incident.severity.upper()}] {headline} · {incident.patient_id} · {', '.join(kinds)}"
        detail = ""
        if event.kind == "escalated":
            detail = f" Level {incident.escalation_level}."
        elif event.kind == "reminder":
            detail = f" Reminder {incident.reminders}."
        elif event.kind in ("acknowledged", "resolved"):
            detail = f" By {event.actor}."
            if event.kind == "resolved" and incident.resolution:
                detail += f" {incident.resolution}"
        body = f"{headline}: {incident.patient_id}, {incident.severity}.{detail} {clinician_text}".strip()
        body += f" Incident {incident.incident_id}."
    payload = {
        "event": event.kind, "t": event.t, "actor": event.actor, "revision": event.revision,
        "incident": {
            "incident_id": incident.incident_id, "patient_id": incident.patient_id, "category": incident.category,
            "severity": incident.severity, "state": incident.state, "escalation_level": incident.escalation_level,
            "opened_t": incident.opened_t, "alerts": {k: {"kind": m.kind, "severity": m.severity, "active": m.active}
                                                      for k, m in incident.members.items()},
        },
        "alert": None if alert is None else {name: getattr(alert, name) for name in PAYLOAD_ALERT_FIELDS},
    }
    return subject, body, payload
