"""Incidents: what clinicians act on. Related alerts of one patient become one incident.

An alert says one rule fired (heart rate high, SpO2 low). A deteriorating patient trips several
at once; paging a clinician for each would be a storm. So every alert joins its patient's
current incident of the same category (clinical or technical) while that incident is
unresolved, and the incident carries the lifecycle:

    open ──acknowledge──▶ acknowledged ──resolve──▶ resolved
      │                         │
      └── all alerts cleared and settled (hysteresis) ──▶ resolved (auto, actor "vigil")

- The incident's severity is the highest of its active alerts; it rises and falls with them.
- An unacknowledged incident sends reminders and, when its severity calls for it, escalates to
  the next contact level after a configurable delay. Acknowledging stops both.
- A worsening after acknowledgement reopens the incident: it needs a new acknowledgement.
- Once every alert has cleared, the incident waits `settle_s` before resolving itself, so an
  alert that flaps off and on again rejoins the same incident instead of opening a new one.

Pure: no I/O, no clock. Every call takes `t` and returns the events it caused; each event has
a per-incident revision, which makes the notification keys derived from it stable on replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from vigil.core.events import SEVERITY_RANK, Alert
from vigil.core.outcomes import check_outcome

IncidentState = Literal["open", "acknowledged", "resolved"]
IncidentEventKind = Literal[
    "opened", "joined", "worsened", "eased", "alert_cleared", "escalated", "reminder",
    "acknowledged", "resolved", "auto_resolved", "patient_ok", "patient_help",
]
# The patient's own answer to an alert, from the patient app ("I'm OK", "I need help").
PATIENT_ANSWERS: dict[str, IncidentEventKind] = {"ok": "patient_ok", "help": "patient_help"}


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Timers by severity, in seconds; None means never."""

    escalate_after_s: Mapping[str, float | None] = field(default_factory=lambda: {
        "critical": 5 * 60.0, "high": 15 * 60.0, "medium": None, "low": None})
    remind_every_s: Mapping[str, float | None] = field(default_factory=lambda: {
        "critical": 5 * 60.0, "high": 15 * 60.0, "medium": 60 * 60.0, "low": None})
    settle_s: float = 10 * 60.0
    max_level: int = 3  # escalation levels beyond the first contacts

    def escalation_interval(self, severity: str) -> float | None:
        return self.escalate_after_s.get(severity)

    def reminder_interval(self, severity: str) -> float | None:
        return self.remind_every_s.get(severity)


DEFAULT_LIFECYCLE = LifecyclePolicy()


@dataclass(slots=True)
class Member:
    """One alert inside an incident."""

    kind: str
    severity: str
    active: bool = True


@dataclass(slots=True)
class Incident:
    incident_id: str
    patient_id: str
    category: str
    opened_t: float
    severity: str
    state: IncidentState = "open"
    members: dict[str, Member] = field(default_factory=dict)  # alert_id -> member
    escalation_level: int = 0
    reminders: int = 0
    next_escalation_t: float | None = None
    next_reminder_t: float | None = None
    all_clear_since: float | None = None
    acknowledged_t: float | None = None
    acknowledged_by: str | None = None
    resolved_t: float | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    outcome: str | None = None  # what the clinician found (core.outcomes), when resolved by one
    revision: int = 0
    updated_t: float = 0.0

    def active_alerts(self) -> list[str]:
        return [alert_id for alert_id, m in self.members.items() if m.active]

    def copy(self) -> Incident:
        return replace(self, members={k: replace(m) for k, m in self.members.items()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id, "patient_id": self.patient_id, "category": self.category,
            "opened_t": self.opened_t, "severity": self.severity, "state": self.state,
            "members": {k: {"kind": m.kind, "severity": m.severity, "active": m.active} for k, m in self.members.items()},
            "escalation_level": self.escalation_level, "reminders": self.reminders,
            "next_escalation_t": self.next_escalation_t, "next_reminder_t": self.next_reminder_t,
            "all_clear_since": self.all_clear_since, "acknowledged_t": self.acknowledged_t,
            "acknowledged_by": self.acknowledged_by, "resolved_t": self.resolved_t, "resolved_by": self.resolved_by,
            "resolution": self.resolution, "outcome": self.outcome, "revision": self.revision, "updated_t": self.updated_t,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        fields = dict(data)
        members = {k: Member(**m) for k, m in dict(fields.pop("members", {})).items()}
        return cls(members=members, **fields)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """Something happened to an incident. `incident` is a snapshot taken right after it."""

    kind: IncidentEventKind
    incident: Incident
    t: float
    actor: str = "vigil"
    alert: Alert | None = None  # the alert that caused it, for alert-driven events
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        return self.incident.revision


def incident_id_for(first_alert_id: str, t: float) -> str:
    """Stable: the alert that opened it and when (an alert can open a second incident after a
    clinician resolved the first while it stayed active)."""
    return "in-" + hashlib.sha1(f"{first_alert_id}|{t:.3f}".encode()).hexdigest()[:20]


class IncidentBook:
    """Every unresolved incident, by patient and category; resolved ones leave the book."""

    def __init__(self, policy: LifecyclePolicy = DEFAULT_LIFECYCLE) -> None:
        self.policy = policy
        self.incidents: dict[str, Incident] = {}
        self._current: dict[tuple[str, str], str] = {}  # (patient, category) -> incident id
        self._by_alert: dict[str, str] = {}

    # -- state ------------------------------------------------------------------------------

    def restore(self, incident: Incident) -> None:
        """Put back an unresolved incident loaded from the store (after a restart)."""
        if incident.state == "resolved":
            return
        self.incidents[incident.incident_id] = incident
        self._current[(incident.patient_id, incident.category)] = incident.incident_id
        for alert_id in incident.members:
            self._by_alert[alert_id] = incident.incident_id

    def incident_for_alert(self, alert_id: str) -> Incident | None:
        incident_id = self._by_alert.get(alert_id)
        return None if incident_id is None else self.incidents.get(incident_id)

    def open_incidents(self) -> list[Incident]:
        return list(self.incidents.values())

    # -- alerts in --------------------------------------------------------------------------

    def alert_raised(self, alert: Alert, t: float) -> list[IncidentEvent]:
        alert_id, severity = alert.alert_id, alert.severity
        if alert_id in self._by_alert:
            return []  # already seen (a replay): never twice
        key = (alert.patient_id, alert.category)
        current = self._current.get(key)
        incident = None if current is None else self.incidents.get(current)
        member = Member(alert.kind, severity)
        if incident is None:
            incident = Incident(incident_id_for(alert_id, t), key[0], key[1], t, severity, updated_t=t)
            incident.members[alert_id] = member
            self.incidents[incident.incident_id] = incident
            self._current[key] = incident.incident_id
            self._by_alert[alert_id] = incident.incident_id
            self._arm(incident, t)
            return [self._event("opened", incident, t, alert=alert)]
        incident.members[alert_id] = member
        self._by_alert[alert_id] = incident.incident_id
        if incident.all_clear_since is not None:
            incident.all_clear_since = None
            if incident.state == "open":
                self._arm(incident, t)  # back from settling: the timers run again
        return self._reassess(incident, t, alert, joined=True)

    def alert_severity_changed(self, alert: Alert, t: float) -> list[IncidentEvent]:
        incident = self.incident_for_alert(alert.alert_id)
        if incident is None:
            # Its incident was resolved by a clinician while the alert stayed active; a change in
            # the patient's state now is news, so it opens a new incident.
            return self.alert_raised(alert, t)
        member = incident.members[alert.alert_id]
        if member.severity == alert.severity:
            return []
        member.severity = alert.severity
        return self._reassess(incident, t, alert)

    def alert_cleared(self, alert: Alert, t: float) -> list[IncidentEvent]:
        incident = self.incident_for_alert(alert.alert_id)
        if incident is None:
            return []
        member = incident.members[alert.alert_id]
        if not member.active:
            return []
        member.active = False
        events = [self._event("alert_cleared", incident, t, alert=alert)]
        if not incident.active_alerts():
            # Everything has settled: stop chasing people, start the settle timer.
            incident.all_clear_since = t
            incident.next_escalation_t = incident.next_reminder_t = None
            return events
        return events + self._reassess(incident, t, alert)

    # -- clinicians in ----------------------------------------------------------------------

    def acknowledge(self, incident_id: str, actor: str, t: float) -> list[IncidentEvent]:
        incident = self.incidents.get(incident_id)
        if incident is None or incident.state != "open":
            return []  # unknown, already acknowledged, or resolved: nothing changes
        incident.state = "acknowledged"
        incident.acknowledged_t, incident.acknowledged_by = t, actor
        incident.next_escalation_t = incident.next_reminder_t = None
        return [self._event("acknowledged", incident, t, actor=actor)]

    def resolve(self, incident_id: str, actor: str, t: float, note: str = "",
                outcome: str | None = None) -> list[IncidentEvent]:
        """Close the incident; `outcome` (core.outcomes) labels what the clinician found."""
        incident = self.incidents.get(incident_id)
        if incident is None:
            return []
        incident.resolution = note or "resolved by clinician"
        incident.outcome = check_outcome(outcome)
        detail = {"outcome": incident.outcome, "note": note} if incident.outcome else None
        return [self._close(incident, "resolved", actor, t, detail)]

    def patient_answered(self, incident_id: str, answer: str, actor: str, t: float) -> list[IncidentEvent]:
        """The patient answered an alert of this incident. Both answers go on the incident's timeline
        (and so to the ward console); "help" on an acknowledged incident reopens it, so that it needs
        a new acknowledgement and escalates again if none comes, like a worsening would."""
        incident = self.incidents.get(incident_id)
        if incident is None or answer not in PATIENT_ANSWERS:
            return []  # unknown or resolved: the caller keeps the answer and tells the ward itself
        if answer == "help" and incident.state == "acknowledged":
            incident.state = "open"
            incident.acknowledged_t = incident.acknowledged_by = None
            self._arm(incident, t)
        return [self._event(PATIENT_ANSWERS[answer], incident, t, actor=actor, detail={"answer": answer})]

    # -- the clock --------------------------------------------------------------------------

    def tick(self, now: float) -> list[IncidentEvent]:
        events: list[IncidentEvent] = []
        for incident in list(self.incidents.values()):
            if incident.all_clear_since is not None:
                if now - incident.all_clear_since >= self.policy.settle_s:
                    incident.resolution = "all alerts cleared"
                    events.append(self._close(incident, "auto_resolved", "vigil", now))
                continue
            if incident.state != "open":
                continue
            if incident.next_escalation_t is not None and now >= incident.next_escalation_t:
                if incident.escalation_level < self.policy.max_level:
                    incident.escalation_level += 1
                    interval = self.policy.escalation_interval(incident.severity)
                    incident.next_escalation_t = None if interval is None else now + interval
                    self._arm_reminder(incident, now)
                    events.append(self._event("escalated", incident, now, detail={"level": incident.escalation_level}))
                    continue
                incident.next_escalation_t = None  # no one left to escalate to; reminders go on
            if incident.next_reminder_t is not None and now >= incident.next_reminder_t:
                incident.reminders += 1
                self._arm_reminder(incident, now)
                events.append(self._event("reminder", incident, now, detail={"reminder": incident.reminders}))
        return events

    def undelivered(self, incident_id: str, recipient_id: str, t: float) -> list[IncidentEvent]:
        """A recipient was reached on no channel (every one failed for good): escalate now to the
        next level (the console hears every event), whatever the timers say. A critical incident
        must never end with nobody told (issue 13)."""
        incident = self.incidents.get(incident_id)
        if incident is None or incident.state == "resolved":
            return []
        if incident.escalation_level < self.policy.max_level:
            incident.escalation_level += 1
        self._arm(incident, t)
        return [self._event("escalated", incident, t, detail={"level": incident.escalation_level,
                                                              "undelivered": recipient_id})]

    # -- pieces -----------------------------------------------------------------------------

    def _reassess(self, incident: Incident, t: float, alert: Alert, joined: bool = False) -> list[IncidentEvent]:
        active = [incident.members[a].severity for a in incident.active_alerts()]
        severity = max(active, key=SEVERITY_RANK.__getitem__) if active else incident.severity
        previous = incident.severity
        if SEVERITY_RANK[severity] > SEVERITY_RANK[previous]:
            incident.severity = severity
            if incident.state == "acknowledged":
                # Worse than what the clinician acknowledged: it needs their eyes again.
                incident.state = "open"
                incident.acknowledged_t = incident.acknowledged_by = None
            self._arm(incident, t)
            return [self._event("worsened", incident, t, alert=alert, detail={"previous": previous, "joined": joined})]
        if SEVERITY_RANK[severity] < SEVERITY_RANK[previous]:
            incident.severity = severity
            if incident.state == "open":
                self._arm(incident, t)
            return [self._event("eased", incident, t, alert=alert, detail={"previous": previous, "joined": joined})]
        if joined:
            return [self._event("joined", incident, t, alert=alert)]
        return []

    def _arm(self, incident: Incident, t: float) -> None:
        interval = self.policy.escalation_interval(incident.severity)
        incident.next_escalation_t = None if interval is None else t + interval
        self._arm_reminder(incident, t)

    def _arm_reminder(self, incident: Incident, t: float) -> None:
        interval = self.policy.reminder_interval(incident.severity)
        incident.next_reminder_t = None if interval is None else t + interval

    def _close(self, incident: Incident, kind: IncidentEventKind, actor: str, t: float,
               detail: Mapping[str, Any] | None = None) -> IncidentEvent:
        incident.state = "resolved"
        incident.resolved_t, incident.resolved_by = t, actor
        incident.next_escalation_t = incident.next_reminder_t = None
        event = self._event(kind, incident, t, actor=actor, detail=detail)
        del self.incidents[incident.incident_id]
        key = (incident.patient_id, incident.category)
        if self._current.get(key) == incident.incident_id:
            del self._current[key]
        for alert_id in incident.members:
            self._by_alert.pop(alert_id, None)
        return event

    def _event(self, kind: IncidentEventKind, incident: Incident, t: float, *, actor: str = "vigil",
               alert: Alert | None = None, detail: Mapping[str, Any] | None = None) -> IncidentEvent:
        incident.revision += 1
        incident.updated_t = t
        return IncidentEvent(kind, incident.copy(), t, actor, alert, dict(detail or {}))
