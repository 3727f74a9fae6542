"""The alert desk: the thin shell around the core's IncidentBook and notification planner.

Alert changes come in (from the embedded pipeline, or from the `vigil.alerts` topic in the
scaled mode); incident rows, audit rows and outbox rows go out, appended to the caller's
WriteBatch so that they commit in the same transaction as the alert change that caused them.
That is the transactional outbox: a notification exists if and only if its incident change does.

Each (alert, event, t) is taken in once (the desk_inbox table), so a replayed Kafka record or a
reprocessed batch changes nothing. Acknowledge and resolve come from clinicians through the API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from vigil.core.events import Alert
from vigil.core.incident import DEFAULT_LIFECYCLE, IncidentBook, IncidentEvent, LifecyclePolicy
from vigil.core.notification import plan_notifications
from vigil.shell.desk.messages import TextSource, lead_alert, render
from vigil.shell.desk.recipients import recipients_for
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.rows import AuditRow, IncidentAlertRow, IncidentRow, InboxRow, OutboxRow
from vigil.shell.stores.sql import WriteBatch

log = logging.getLogger("vigil.desk")

ALERT_EVENTS = ("raised", "severity_changed", "cleared")


class IncidentClosed(Exception):
    """A clinician acted on a resolved incident: nothing changes, and the caller is told so (HTTP 409)."""

    def __init__(self, row: dict) -> None:
        super().__init__(f"incident {row['incident_id']} is resolved")
        self.row = row


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One event of an alert, with the alert as it stood then."""

    event: str  # raised, severity_changed, cleared
    alert: Alert  # a copy: the core goes on changing its own (see `of`)
    t: float

    @classmethod
    def of(cls, event: str, alert: Alert, t: float) -> AlertChange:
        """The change, with a copy of the core's alert as it stands now."""
        copied = replace(alert, values=dict(alert.values), contributors=list(alert.contributors),
                         baselines=dict(alert.baselines), trends=dict(alert.trends))
        return cls(event, copied, t)

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.alert.alert_id, self.event, round(float(self.t), 3))


class AlertDesk:
    def __init__(
        self,
        registry: Registry,
        store: DeskStore,
        texts: TextSource,
        metrics: Metrics,
        *,
        policy: LifecyclePolicy = DEFAULT_LIFECYCLE,
        ward_webhook: str | None = None,
        clock: Callable[[], float] = time.time,
        on_raised: Callable[[Alert], None] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.texts = texts
        self.metrics = metrics
        self.ward_webhook = ward_webhook
        self.clock = clock
        self.book = IncidentBook(policy)
        self.alerts: dict[str, Alert] = {}  # the latest of each member alert, for reminders
        self.on_raised = on_raised  # e.g. queue the richer explanation, off the critical path
        self.wake = wake  # the dispatcher's doorbell: new outbox rows are durable

    def restore(self) -> int:
        """Load every unresolved incident (and its alerts) back into the book, after a restart."""
        self.book = IncidentBook(self.book.policy)
        self.alerts.clear()
        found = self.store.unresolved_incidents()
        for incident in found:
            self.book.restore(incident)
        member_ids = [alert_id for incident in found for alert_id in incident.members]
        self.alerts.update(self.store.alerts_by_id(member_ids))
        self.metrics.open_incidents.set(len(self.book.incidents))
        return len(found)

    # -- in -----------------------------------------------------------------------------------

    def take(self, changes: list[AlertChange], batch: WriteBatch) -> list[IncidentEvent]:
        """Apply alert changes; append what they cause to `batch` (commit it with the alerts)."""
        if not changes:
            return []
        seen = self.store.seen_changes([c.key for c in changes])
        events: list[IncidentEvent] = []
        for change in changes:
            if change.key in seen:
                continue
            seen.add(change.key)
            alert = change.alert
            alert_id = alert.alert_id
            self.alerts[alert_id] = alert
            batch.desk_inbox.append(InboxRow(alert_id, change.event, change.key[2]))
            if change.event == "raised":
                caused = self.book.alert_raised(alert, change.t)
                if caused and self.on_raised is not None:
                    self.on_raised(alert)
            elif change.event == "severity_changed":
                caused = self.book.alert_severity_changed(alert, change.t)
            elif change.event == "cleared":
                caused = self.book.alert_cleared(alert, change.t)
            else:
                raise ValueError(f"unknown alert event {change.event!r}")
            for event in caused:
                if event.alert is not None and event.kind in ("opened", "joined", "worsened", "eased"):
                    batch.incident_alerts.append(IncidentAlertRow(alert_id, event.incident.incident_id))
            events.extend(caused)
        self._record(events, batch)
        return events

    def tick(self, now: float, batch: WriteBatch) -> list[IncidentEvent]:
        events = self.book.tick(now)
        self._record(events, batch)
        return events

    def acknowledge(self, incident_id: str, actor: str, batch: WriteBatch, now: float | None = None) -> list[IncidentEvent]:
        events = self.book.acknowledge(incident_id, actor, self.clock() if now is None else now)
        self._record(events, batch)
        return events

    def resolve(self, incident_id: str, actor: str, note: str, batch: WriteBatch, now: float | None = None,
                outcome: str | None = None) -> list[IncidentEvent]:
        events = self.book.resolve(incident_id, actor, self.clock() if now is None else now, note, outcome)
        self._record(events, batch)
        return events

    def patient_answered(self, incident_id: str, answer: str, actor: str, batch: WriteBatch,
                         now: float | None = None) -> list[IncidentEvent]:
        """The patient's "I'm OK" or "I need help" from the app: on the incident's timeline, to the ward."""
        events = self.book.patient_answered(incident_id, answer, actor, self.clock() if now is None else now)
        self._record(events, batch)
        return events

    def undelivered(self, incident_id: str, recipient_id: str, batch: WriteBatch, now: float | None = None) -> list[IncidentEvent]:
        """A recipient every channel failed for: escalate the incident now (core.incident)."""
        events = self.book.undelivered(incident_id, recipient_id, self.clock() if now is None else now)
        self._record(events, batch)
        return events

    def incident_id_for(self, ident: str) -> str | None:
        """An incident id, or the id of an alert in it."""
        if ident.startswith("in-"):
            return ident
        incident = self.book.incident_for_alert(ident)
        return incident.incident_id if incident is not None else self.store.incident_id_for_alert(ident)

    # -- out ----------------------------------------------------------------------------------

    def _record(self, events: list[IncidentEvent], batch: WriteBatch) -> None:
        if not events:
            return
        wall = self.clock()
        latest: dict[str, IncidentEvent] = {}
        for event in events:
            incident = event.incident
            latest[incident.incident_id] = event
            alert = event.alert
            batch.incident_audit.append(AuditRow(
                incident.incident_id, event.revision, event.kind, event.t, event.actor,
                None if alert is None else alert.alert_id,
                {**dict(event.detail), "severity": incident.severity, "state": incident.state},
            ))
            self.metrics.incident_events.labels(event.kind, incident.severity).inc()
            log.info("incident " + event.kind, extra={"incident_id": incident.incident_id, "patient_id": incident.patient_id,
                                                      "severity": incident.severity, "actor": event.actor,
                                                      "revision": event.revision})
            explaining = alert if alert is not None else lead_alert(incident, self.alerts)
            recipients = recipients_for(incident.patient_id, self.registry.profile(incident.patient_id), self.ward_webhook)
            for intent in plan_notifications(event, recipients):
                subject, body, payload = render(intent, event, explaining, self.texts)
                batch.outbox.append(OutboxRow(
                    intent.key, intent.incident_id, intent.patient_id, intent.event, intent.revision,
                    intent.recipient_id, intent.role, intent.audience, intent.channel, intent.address, intent.language,
                    intent.severity, intent.critical, subject, body, payload, "template", intent.deliver_after, wall,
                ))
                self.metrics.notifications_queued.labels(intent.channel).inc()
        for event in latest.values():
            incident = event.incident
            if incident.state == "resolved":  # out of the book: its alerts are no longer needed here
                for alert_id in incident.members:
                    self.alerts.pop(alert_id, None)
            batch.incidents.append(IncidentRow.of(incident))
        self.metrics.open_incidents.set(len(self.book.incidents))

    def committed(self) -> None:
        """The batch holding this desk's rows is durable: ring the dispatcher's doorbell."""
        if self.wake is not None:
            self.wake()
