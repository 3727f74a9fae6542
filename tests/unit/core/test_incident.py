"""The incident lifecycle: grouping, acknowledge/resolve, escalation, reminders, auto-resolve."""

from __future__ import annotations

from vigil.core.events import Alert
from vigil.core.incident import Incident, IncidentBook, LifecyclePolicy

T0 = 1_700_000_000.0


def alert(alert_id: str, kind: str = "tachycardia", severity: str = "high", patient: str = "pt-1",
          category: str = "clinical") -> Alert:
    return Alert(alert_id, patient, kind, category, severity, rule="", values={}, onset_t=T0, raised_t=T0)


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_related_alerts_join_one_incident_instead_of_a_storm():
    book = IncidentBook()
    opened = book.alert_raised(alert("a1", "tachycardia", "high"), T0)
    assert kinds(opened) == ["opened"]
    incident_id = opened[0].incident.incident_id
    joined = book.alert_raised(alert("a2", "hypoxaemia", "high"), T0 + 30)
    assert kinds(joined) == ["joined"]
    assert joined[0].incident.incident_id == incident_id
    assert set(joined[0].incident.members) == {"a1", "a2"}
    # Another patient, and a technical alert of the same patient, are separate incidents.
    other = book.alert_raised(alert("b1", patient="pt-2"), T0 + 31)
    technical = book.alert_raised(alert("a3", "device_offline", "low", category="technical"), T0 + 32)
    assert len({incident_id, other[0].incident.incident_id, technical[0].incident.incident_id}) == 3


def test_replayed_alert_changes_nothing():
    book = IncidentBook()
    book.alert_raised(alert("a1"), T0)
    assert book.alert_raised(alert("a1"), T0 + 5) == []
    assert book.alert_severity_changed(alert("a1"), T0 + 6) == []  # same severity


def test_severity_follows_the_worst_active_alert():
    book = IncidentBook()
    book.alert_raised(alert("a1", "tachycardia", "medium"), T0)
    worsened = book.alert_raised(alert("a2", "hypoxaemia", "critical"), T0 + 60)
    assert kinds(worsened) == ["worsened"] and worsened[0].incident.severity == "critical"
    assert worsened[0].detail["previous"] == "medium"
    cleared = book.alert_cleared(alert("a2", "hypoxaemia", "critical"), T0 + 600)
    assert kinds(cleared) == ["alert_cleared", "eased"]
    assert cleared[-1].incident.severity == "medium"


def test_unacknowledged_critical_escalates_and_reminds_until_acknowledged():
    policy = LifecyclePolicy(escalate_after_s={"critical": 300.0}, remind_every_s={"critical": 120.0}, max_level=2)
    book = IncidentBook(policy)
    incident_id = book.alert_raised(alert("a1", severity="critical"), T0)[0].incident.incident_id
    assert book.tick(T0 + 119) == []
    reminder = book.tick(T0 + 120)
    assert kinds(reminder) == ["reminder"] and reminder[0].detail["reminder"] == 1
    assert kinds(book.tick(T0 + 240)) == ["reminder"]
    escalated = book.tick(T0 + 300)
    assert kinds(escalated) == ["escalated"] and escalated[0].incident.escalation_level == 1
    assert kinds(book.tick(T0 + 600)) == ["escalated"]  # level 2
    # Out of levels: reminders go on, escalation stops.
    assert kinds(book.tick(T0 + 900)) == ["reminder"]
    ack = book.acknowledge(incident_id, "dr.ahmed", T0 + 905)
    assert kinds(ack) == ["acknowledged"] and ack[0].actor == "dr.ahmed"
    assert book.tick(T0 + 3600) == []
    assert book.acknowledge(incident_id, "dr.ahmed", T0 + 3601) == []  # once


def test_medium_reminds_but_never_escalates_by_default():
    book = IncidentBook()
    book.alert_raised(alert("a1", severity="medium"), T0)
    assert kinds(book.tick(T0 + 3600)) == ["reminder"]
    assert book.open_incidents()[0].escalation_level == 0


def test_worsening_after_acknowledgement_reopens():
    book = IncidentBook()
    incident_id = book.alert_raised(alert("a1", severity="high"), T0)[0].incident.incident_id
    book.acknowledge(incident_id, "nurse.li", T0 + 60)
    worse = book.alert_severity_changed(alert("a1", severity="critical"), T0 + 120)
    assert kinds(worse) == ["worsened"] and worse[0].incident.state == "open"
    assert worse[0].incident.acknowledged_by is None
    assert worse[0].incident.next_escalation_t == T0 + 120 + 300


def test_all_clear_settles_then_auto_resolves_and_a_flap_rejoins():
    book = IncidentBook(LifecyclePolicy(settle_s=600.0))
    incident_id = book.alert_raised(alert("a1"), T0)[0].incident.incident_id
    book.alert_cleared(alert("a1"), T0 + 100)
    assert book.tick(T0 + 650) == []  # still settling
    # It flaps back within the settle time: same incident, no new page.
    assert kinds(book.alert_raised(alert("a2"), T0 + 650)) == ["joined"]
    book.alert_cleared(alert("a2"), T0 + 700)
    resolved = book.tick(T0 + 1300)
    assert kinds(resolved) == ["auto_resolved"] and resolved[0].incident.state == "resolved"
    assert resolved[0].incident.resolution == "all alerts cleared"
    assert book.open_incidents() == []
    assert kinds(book.alert_raised(alert("a3"), T0 + 1400)) == ["opened"]
    assert book.open_incidents()[0].incident_id != incident_id


def test_clinician_resolves_and_a_later_change_opens_a_new_incident():
    book = IncidentBook()
    incident_id = book.alert_raised(alert("a1", severity="high"), T0)[0].incident.incident_id
    resolved = book.resolve(incident_id, "dr.ahmed", T0 + 60, "seen at home visit")
    assert kinds(resolved) == ["resolved"] and resolved[0].incident.resolution == "seen at home visit"
    again = book.alert_severity_changed(alert("a1", severity="critical"), T0 + 120)
    assert kinds(again) == ["opened"] and again[0].incident.incident_id != incident_id


def test_revisions_count_every_event_and_restore_round_trips():
    book = IncidentBook()
    first = book.alert_raised(alert("a1"), T0)[0]
    second = book.alert_raised(alert("a2"), T0 + 1)[0]
    assert (first.revision, second.revision) == (1, 2)
    saved = second.incident.as_dict()
    restored = IncidentBook()
    restored.restore(Incident.from_dict(saved))
    assert restored.alert_raised(alert("a2"), T0 + 2) == []  # known after restore
    assert kinds(restored.alert_raised(alert("a4"), T0 + 3)) == ["joined"]
    assert restored.open_incidents()[0].revision == 3


def test_an_undelivered_recipient_escalates_the_incident_at_once():
    """Issue 13: a page that reached nobody escalates now, not after the escalation timer."""
    from vigil.core.incident import IncidentBook
    from vigil.core.events import Alert

    book = IncidentBook()
    alert = Alert("al-1", "p-1", "hypoxaemia", "clinical", "critical", "SpO2 <= 85", {}, 0.0, 0.0)
    (opened,) = book.alert_raised(alert, 0.0)
    (escalated,) = book.undelivered(opened.incident.incident_id, "team:p-1:dr", 10.0)
    assert escalated.kind == "escalated" and escalated.incident.escalation_level == 1
    assert escalated.detail["undelivered"] == "team:p-1:dr"
    assert book.undelivered("in-unknown", "x", 11.0) == []
