"""The alert desk on its own: alert changes in; incident, audit, inbox and outbox rows out.

A SQLite DeskStore in tmp_path, a fixed clock, no dispatcher and no server. Every check reads
the rows back through the stores (DeskStore and SqlStore queries), as the rest of Vigil does.
"""

from __future__ import annotations

import pytest

from vigil.core.events import Alert
from vigil.shell.explain.templates import AlertTexts
from vigil.shell.desk.desk import AlertChange, AlertDesk
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.tables import desk_inbox, incident_alerts, incident_audit, incidents, outbox

T0 = 1_760_000_000.0  # 2025-10-09 08:53 UTC: daytime in London, no quiet hours
ROSTER = Roster.model_validate({"patients": [{
    "patient_id": "p-001", "language": "en",
    "notifications": {"channels": ["app", "sms"], "phone": "+447700900001"},
    "care_team": [
        {"name": "Dr Ahmed", "phone": "+447700900002", "email": "ahmed@ward.example.org", "channels": ["sms", "email"]},
        {"name": "On call", "role": "on_call", "phone": "+447700900003", "channels": ["sms"], "escalation_order": 2},
    ],
}]})
DESK_TABLES = (incidents, incident_alerts, incident_audit, desk_inbox, outbox)


def alert(alert_id: str, kind: str = "hypoxaemia", severity: str = "high", t: float = T0, **extra) -> Alert:
    return Alert(alert_id, "p-001", kind, "clinical", severity, f"{kind} rule",
                 {"spo2_pct": 89} if kind == "hypoxaemia" else {"hr_bpm": 131}, t - 300, t,
                 baselines={"hr": 74.0, "spo2": 97.0}, **extra)


def texts(alert: Alert, language: str) -> AlertTexts:
    """A stand-in for the template explainer."""
    return AlertTexts(f"Your {alert.kind} reading needs a check.", f"{alert.kind} {alert.values}")


class Ward:
    """One process: its SQL store and the desk over it. A second Ward on the same file is a restart."""

    def __init__(self, path) -> None:
        self.now = T0
        self.store = SqlStore(f"sqlite:///{path / 'desk.sqlite'}")
        self.desk_store = DeskStore(self.store.engine)
        self.raised: list = []
        self.desk = AlertDesk(Registry(ROSTER), self.desk_store, texts, Metrics(), clock=lambda: self.now,
                              on_raised=self.raised.append)
        self.restored = self.desk.restore()

    def take(self, *changes: AlertChange) -> list[str]:
        """Take changes in and commit what they caused; the kinds of incident event they caused."""
        batch = WriteBatch()
        events = self.desk.take(list(changes), batch)
        self.store.write(batch)
        return [e.kind for e in events]

    def tick(self, now: float) -> list[str]:
        self.now = now
        batch = WriteBatch()
        events = self.desk.tick(now, batch)
        self.store.write(batch)
        return [e.kind for e in events]

    def act(self, action: str, incident_id: str, actor: str, note: str = "") -> list[str]:
        batch = WriteBatch()
        if action == "acknowledge":
            events = self.desk.acknowledge(incident_id, actor, batch)
        else:
            events = self.desk.resolve(incident_id, actor, note, batch)
        self.store.write(batch)
        return [e.kind for e in events]

    def counts(self) -> dict[str, int]:
        return {table.name: self.store.count(table) for table in DESK_TABLES}

    def incident_id(self) -> str:
        (row,) = self.desk_store.incidents()
        return row["incident_id"]

    def messages(self, event: str) -> set[tuple[str, str]]:
        """(recipient, channel) of the outbox rows an incident event queued."""
        return {(r["recipient_id"], r["channel"]) for r in self.desk_store.outbox_rows() if r["event"] == event}


@pytest.fixture
def ward(tmp_path):
    ward = Ward(tmp_path)
    yield ward
    ward.store.close()


def test_a_raised_alert_opens_an_incident_with_its_audit_inbox_and_outbox_rows(ward):
    assert ward.take(AlertChange("raised", alert("a1"), T0)) == ["opened"]
    (row,) = ward.desk_store.incidents()
    incident_id = row["incident_id"]
    assert (row["patient_id"], row["state"], row["severity"], row["revision"]) == ("p-001", "open", "high", 1)
    assert [(a["event"], a["alert_id"], a["actor"]) for a in ward.desk_store.audit(incident_id)] == [("opened", "a1", "vigil")]
    assert ward.desk_store.incident_id_for_alert("a1") == incident_id
    assert ward.desk_store.seen_changes([("a1", "raised", T0)]) == {("a1", "raised", T0)}
    # The console, the patient (app, sms) and the first-level doctor (sms, e-mail); on call is level 2.
    assert ward.messages("opened") == {("console", "app"), ("patient:p-001", "app"), ("patient:p-001", "sms"),
                                       ("team:p-001:dr-ahmed", "sms"), ("team:p-001:dr-ahmed", "email")}
    rows = ward.desk_store.outbox_rows(incident_id=incident_id)
    assert {(r["status"], r["attempts"], r["text_source"], r["created_t"]) for r in rows} == {("pending", 0, "template", T0)}
    assert len({r["key"] for r in rows}) == len(rows)
    doctor = next(r for r in rows if r["recipient_id"] == "team:p-001:dr-ahmed" and r["channel"] == "sms")
    assert "p-001" in doctor["subject"] and "spo2_pct" in doctor["body"]  # the clinician text of the alert
    patient = next(r for r in rows if r["recipient_id"] == "patient:p-001" and r["channel"] == "sms")
    assert "hypoxaemia reading needs a check" in patient["body"] and patient["audience"] == "patient"


def test_a_related_alert_joins_quietly_and_a_worse_one_pages_again(ward):
    ward.take(AlertChange("raised", alert("a1"), T0))
    assert ward.take(AlertChange("raised", alert("a2", "tachycardia", t=T0 + 20), T0 + 20)) == ["joined"]
    assert ward.messages("joined") == {("console", "app")}  # no storm: the console only
    assert ward.take(AlertChange("severity_changed", alert("a2", "tachycardia", "critical", T0 + 20), T0 + 40)) == ["worsened"]
    incident_id = ward.incident_id()
    assert ward.desk_store.incident(incident_id)["severity"] == "critical"
    assert ward.desk_store.incident_id_for_alert("a2") == incident_id
    assert [a["event"] for a in ward.desk_store.audit(incident_id)] == ["opened", "joined", "worsened"]
    assert ("team:p-001:dr-ahmed", "sms") in ward.messages("worsened")


def test_a_replayed_change_changes_nothing(ward):
    change = AlertChange("raised", alert("a1"), T0)
    ward.take(change)
    before = ward.counts()
    assert ward.take(change) == []  # the same (alert, event, t) again: a replayed Kafka record
    assert ward.take(AlertChange("raised", alert("a1"), T0 + 0.0001)) == []  # t is kept to the millisecond
    assert ward.counts() == before
    assert ward.raised == [change.alert]


def test_the_same_change_twice_in_one_batch_is_taken_once(ward):
    change = AlertChange("raised", alert("a1"), T0)
    assert ward.take(change, change) == ["opened"]
    assert ward.counts()["desk_inbox"] == 1 and ward.counts()["incidents"] == 1


def test_on_raised_is_called_once_per_alert_that_changes_an_incident(ward):
    first, second = alert("a1"), alert("a2", "tachycardia", t=T0 + 20)
    ward.take(AlertChange("raised", first, T0))
    ward.take(AlertChange("raised", first, T0))  # replay
    ward.take(AlertChange("raised", second, T0 + 20))
    ward.take(AlertChange("severity_changed", alert("a2", "tachycardia", "critical", T0 + 20), T0 + 30))
    ward.take(AlertChange("cleared", alert("a1", cleared_t=T0 + 60), T0 + 60))
    assert [a.alert_id for a in ward.raised] == ["a1", "a2"]


def test_tick_escalates_an_unacknowledged_critical_incident(ward):
    ward.take(AlertChange("raised", alert("a1", severity="critical"), T0))
    assert ward.tick(T0 + 299) == []
    assert ward.tick(T0 + 300) == ["escalated"]  # the default policy: critical escalates after 5 minutes
    incident_id = ward.incident_id()
    assert ward.desk_store.incident(incident_id)["escalation_level"] == 1
    assert ward.messages("escalated") == {("console", "app"), ("team:p-001:on-call", "sms")}
    assert [a["event"] for a in ward.desk_store.audit(incident_id)] == ["opened", "escalated"]


def test_acknowledge_stops_the_timers_and_resolve_closes_the_incident(ward):
    ward.take(AlertChange("raised", alert("a1", severity="critical"), T0))
    incident_id = ward.incident_id()
    ward.now = T0 + 60
    assert ward.act("acknowledge", incident_id, "dr.ahmed") == ["acknowledged"]
    assert ward.act("acknowledge", incident_id, "dr.other") == []  # already acknowledged
    row = ward.desk_store.incident(incident_id)
    assert (row["state"], row["acknowledged_by"], row["acknowledged_t"]) == ("acknowledged", "dr.ahmed", T0 + 60)
    assert ward.tick(T0 + 3600) == []  # no escalation, no reminder once acknowledged
    assert ward.act("resolve", incident_id, "dr.ahmed", "seen at home") == ["resolved"]
    row = ward.desk_store.incident(incident_id)
    assert (row["state"], row["resolved_by"], row["resolution"]) == ("resolved", "dr.ahmed", "seen at home")
    audit = ward.desk_store.audit(incident_id)
    assert [(a["event"], a["actor"]) for a in audit] == [("opened", "vigil"), ("acknowledged", "dr.ahmed"),
                                                         ("resolved", "dr.ahmed")]
    assert [a["revision"] for a in audit] == [1, 2, 3]
    assert ward.messages("resolved") and ward.desk.incident_id_for("a1") == incident_id  # from the store now
    assert ward.desk_store.unresolved_incidents() == []


def test_cleared_alerts_settle_and_the_incident_resolves_itself(ward):
    ward.take(AlertChange("raised", alert("a1"), T0))
    assert ward.take(AlertChange("cleared", alert("a1", cleared_t=T0 + 60), T0 + 60)) == ["alert_cleared"]
    assert ward.tick(T0 + 60 + 599) == []
    assert ward.tick(T0 + 60 + 600) == ["auto_resolved"]  # the default settle time: 10 minutes
    row = ward.desk_store.incident(ward.incident_id())
    assert (row["state"], row["resolved_by"], row["resolution"]) == ("resolved", "vigil", "all alerts cleared")


def test_a_restart_restores_unresolved_incidents_and_their_timers(ward, tmp_path):
    ward.take(AlertChange("raised", alert("a1", severity="critical"), T0))
    ward.take(AlertChange("raised", alert("b1", severity="high"), T0 + 1))  # joins a1's incident
    incident_id = ward.incident_id()
    before = ward.counts()

    restarted = Ward(tmp_path)
    assert restarted.restored == 1
    assert restarted.desk.incident_id_for("b1") == incident_id  # from the book, not the store
    assert restarted.take(AlertChange("raised", alert("a1", severity="critical"), T0)) == []  # a replay after the restart
    assert restarted.counts() == before and restarted.raised == []
    assert restarted.tick(T0 + 300) == ["escalated"]  # the escalation timer survived the restart
    assert restarted.take(AlertChange("cleared", alert("a1", severity="critical", cleared_t=T0 + 310), T0 + 310)) == [
        "alert_cleared", "eased"]  # b1 (high) is still active
    assert [a["event"] for a in restarted.desk_store.audit(incident_id)] == [
        "opened", "joined", "escalated", "alert_cleared", "eased"]
    restarted.store.close()


def test_an_unknown_alert_event_is_refused(ward):
    with pytest.raises(ValueError):
        ward.take(AlertChange("exploded", alert("a1"), T0))
