"""The patient's answers to an alert ("I'm OK", "I need help"): on the incident's timeline, to the
ward; "help" reopens an acknowledged incident and pages the care team whatever the severity."""

from __future__ import annotations

from vigil.core.events import Alert
from vigil.core.incident import IncidentBook
from vigil.core.notification import plan_notifications
from vigil.core.profile import ClinicalContext, UsualRange
from vigil.core.usual_range import in_usual_range
from vigil.shell.desk.recipients import recipients_for
from vigil.shell.registry import PatientProfile

T0 = 1_700_000_000.0
PROFILE = PatientProfile.model_validate({
    "patient_id": "p-001", "notifications": {"channels": ["app"]},
    "care_team": [{"name": "Nurse Li", "role": "nurse", "email": "li@example.org", "channels": ["email"],
                   "escalation_order": 1}],
})


def opened(book: IncidentBook, severity: str = "low") -> str:
    alert = Alert("a1", "p-001", "hypoxaemia", "clinical", severity, rule="", values={}, onset_t=T0, raised_t=T0)
    return book.alert_raised(alert, T0)[0].incident.incident_id


def test_im_ok_goes_on_the_timeline_and_to_the_console_only():
    book = IncidentBook()
    incident_id = opened(book)
    events = book.patient_answered(incident_id, "ok", "patient", T0 + 30)
    assert [e.kind for e in events] == ["patient_ok"] and events[0].detail == {"answer": "ok"}
    assert events[0].revision == 2 and events[0].incident.state == "open"
    recipients = {i.recipient_id for i in plan_notifications(events[0], recipients_for("p-001", PROFILE))}
    assert recipients == {"console"}


def test_i_need_help_reopens_an_acknowledged_incident_and_pages_the_care_team():
    book = IncidentBook()
    incident_id = opened(book, severity="low")  # low: no clinician was paged when it opened
    book.acknowledge(incident_id, "nurse.li", T0 + 60)
    events = book.patient_answered(incident_id, "help", "patient", T0 + 120)
    assert [e.kind for e in events] == ["patient_help"]
    assert events[0].incident.state == "open" and events[0].incident.acknowledged_by is None
    recipients = {i.recipient_id for i in plan_notifications(events[0], recipients_for("p-001", PROFILE))}
    assert "console" in recipients and any(r.startswith("team:p-001:") for r in recipients)


def test_an_answer_to_a_resolved_or_unknown_incident_changes_nothing_in_the_book():
    book = IncidentBook()
    incident_id = opened(book)
    book.resolve(incident_id, "nurse.li", T0 + 60)
    assert book.patient_answered(incident_id, "help", "patient", T0 + 90) == []
    assert book.patient_answered("in-nothing", "ok", "patient", T0 + 90) == []
    assert book.patient_answered(opened(IncidentBook()), "maybe", "patient", T0) == []


def test_usual_range_is_the_charted_one_else_news2_zero():
    plain = ClinicalContext()
    assert in_usual_range("spo2", 96, plain) is True and in_usual_range("spo2", 93, plain) is False
    assert in_usual_range("hr", 45, plain) is False
    athlete = ClinicalContext(usual_ranges={"hr": UsualRange(40, 60)})
    assert in_usual_range("hr", 45, athlete) is True
    copd = ClinicalContext(spo2_scale=2)
    assert in_usual_range("spo2", 89, copd) is True
    assert in_usual_range("steps", 1000, plain) is None
