"""Who hears about an incident event, on which channel, in which language, and when.

Pure planning: incident events and recipients in, notification intents out. The shell renders
the words, writes the intents to the outbox in the same transaction as the incident, and a
dispatcher delivers them.

The rules, chosen so clinicians get alerts they can trust rather than a storm:
- Every incident event goes to the web console (in-app push), which is the ward's live view.
- A clinical incident of medium severity or more pages the first contact level when it opens or
  worsens; escalations page the next level; reminders go to every level paged so far.
- The patient hears when a clinical incident opens or worsens (medium or more), in their
  language, on their channels; caregivers hear from high severity up.
- A technical incident (device offline, low battery) goes to the patient only: it is theirs to
  fix, and clinicians see it on the console. Not monitored for a cause the patient cannot fix
  (every sample refused, enrolled but never seen) goes to the ward's first contacts instead.
- Quiet hours defer everything except critical messages to the end of the quiet period.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from vigil.core.events import SEVERITY_RANK
from vigil.core.incident import IncidentEvent

Audience = Literal["patient", "clinician"]
Role = Literal["patient", "caregiver", "clinician", "console"]
CONSOLE = "console"

PAGING_EVENTS = {"opened", "worsened"}
WARD_CAUSES = frozenset({"rejected", "never_seen"})  # coverage causes the patient cannot fix


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    tz: str = "UTC"

    def deferral(self, t: float) -> float | None:
        """Epoch seconds when quiet hours at `t` end, or None when `t` is not in them."""
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(t, timezone.utc).astimezone(zone)
        now = local.time()
        if self.start <= self.end:
            inside = self.start <= now < self.end
        else:  # across midnight, e.g. 22:00-07:00
            inside = now >= self.start or now < self.end
        if not inside:
            return None
        end = datetime.combine(local.date(), self.end, tzinfo=zone)
        if end <= local:
            end += timedelta(days=1)
        return end.timestamp()


@dataclass(frozen=True, slots=True)
class Recipient:
    recipient_id: str  # "patient:p-001", "team:p-001:0", "console"
    role: Role
    channels: tuple[tuple[str, str], ...]  # (channel, address)
    language: str = "en"
    level: int = 0  # escalation level for clinicians (0 = first contacts)
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True, slots=True)
class NotificationIntent:
    key: str  # idempotency key: same incident revision, recipient and channel -> same key
    incident_id: str
    patient_id: str
    event: str
    revision: int
    recipient_id: str
    role: Role
    audience: Audience
    channel: str
    address: str
    language: str
    severity: str
    critical: bool
    deliver_after: float  # epoch seconds; later than the event during quiet hours


def notification_key(incident_id: str, revision: int, recipient_id: str, channel: str) -> str:
    digest = hashlib.sha1(f"{incident_id}|{revision}|{recipient_id}|{channel}".encode()).hexdigest()
    return f"nt-{digest[:24]}"


def plan_notifications(event: IncidentEvent, recipients: list[Recipient]) -> list[NotificationIntent]:
    incident = event.incident
    severity = incident.severity
    rank = SEVERITY_RANK[severity]
    clinical = incident.category == "clinical"
    critical = severity == "critical"
    levels = sorted({r.level for r in recipients if r.role == "clinician"})
    # Beyond the last level there is no one new: everyone on the team hears again.
    level_now = levels[min(incident.escalation_level, len(levels) - 1)] if levels else 0

    # Not monitored for a cause the patient cannot fix (refused data, never seen: docs/coverage.md):
    # the ward's first contacts hear, not the patient.
    alert = event.alert
    for_ward = (not clinical and alert is not None and alert.kind == "not_monitored"
                and alert.values.get("cause") in WARD_CAUSES and event.kind in PAGING_EVENTS)
    chosen: list[Recipient] = []
    for recipient in recipients:
        role = recipient.role
        if role == "console":
            chosen.append(recipient)
        elif for_ward:
            if role == "clinician" and recipient.level == (levels[0] if levels else 0):
                chosen.append(recipient)
        elif role == "clinician" and event.kind == "patient_help":
            if recipient.level <= level_now:  # the patient asked for help: whatever the severity
                chosen.append(recipient)
        elif role == "clinician" and clinical and rank >= SEVERITY_RANK["medium"]:
            if event.kind in PAGING_EVENTS and recipient.level <= level_now:
                chosen.append(recipient)
            elif event.kind == "escalated" and (recipient.level == level_now or incident.escalation_level >= len(levels)):
                chosen.append(recipient)
            elif event.kind == "reminder" and recipient.level <= level_now:
                chosen.append(recipient)
        elif role == "patient" and event.kind in PAGING_EVENTS and (not clinical or rank >= SEVERITY_RANK["medium"]):
            chosen.append(recipient)
        elif role == "caregiver" and clinical and event.kind in PAGING_EVENTS and rank >= SEVERITY_RANK["high"]:
            chosen.append(recipient)

    intents: list[NotificationIntent] = []
    for recipient in chosen:
        deliver_after = event.t
        if not critical and recipient.quiet_hours is not None:
            deferred = recipient.quiet_hours.deferral(event.t)
            if deferred is not None:
                deliver_after = deferred
        audience: Audience = "clinician" if recipient.role in ("clinician", "console") else "patient"
        for channel, address in recipient.channels:
            intents.append(NotificationIntent(
                key=notification_key(incident.incident_id, event.revision, recipient.recipient_id, channel),
                incident_id=incident.incident_id, patient_id=incident.patient_id, event=event.kind,
                revision=event.revision, recipient_id=recipient.recipient_id, role=recipient.role,
                audience=audience, channel=channel, address=address, language=recipient.language,
                severity=severity, critical=critical, deliver_after=deliver_after,
            ))
    return intents
