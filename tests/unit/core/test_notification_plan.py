"""Who hears about what: the notification planner and recipients from a profile."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timezone

from vigil.shell.desk.recipients import recipients_for
from vigil.core.events import Alert
from vigil.core.incident import IncidentBook, LifecyclePolicy
from vigil.core.notification import QuietHours, plan_notifications
from vigil.shell.registry import PatientProfile

# 2026-01-15 03:00 UTC: inside 22:00-07:00 quiet hours in London.
NIGHT = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc).timestamp()
DAY = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc).timestamp()

PROFILE = PatientProfile.model_validate({
    "patient_id": "p-001",
    "language": "zh",
    "notifications": {"channels": ["app", "sms"], "phone": "+447700900001",
                      "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/London"}},
    "care_team": [
        {"name": "Dr Ahmed", "role": "physician", "phone": "+447700900002", "email": "ahmed@example.org",
         "channels": ["sms", "email"], "escalation_order": 1},
        {"name": "Nurse Li", "role": "nurse", "email": "li@example.org", "channels": ["email"], "escalation_order": 1},
        {"name": "On call", "role": "on_call", "phone": "+447700900003", "channels": ["sms"], "escalation_order": 2},
        {"name": "Daughter", "role": "caregiver", "phone": "+447700900004", "channels": ["sms"], "language": "en"},
    ],
})


def alert(alert_id: str, severity: str, kind: str = "hypoxaemia", category: str = "clinical") -> Alert:
    return Alert(alert_id, "p-001", kind, category, severity, rule="", values={}, onset_t=0.0, raised_t=0.0)


def who(intents) -> set[tuple[str, str]]:
    return {(i.recipient_id, i.channel) for i in intents}


def test_opening_pages_first_level_patient_and_caregiver_and_console():
    recipients = recipients_for("p-001", PROFILE)
    event = IncidentBook().alert_raised(alert("a1", "high"), DAY)[0]
    intents = plan_notifications(event, recipients)
    assert who(intents) == {
        ("console", "app"),
        ("patient:p-001", "app"), ("patient:p-001", "sms"),
        ("team:p-001:dr-ahmed", "sms"), ("team:p-001:dr-ahmed", "email"),
        ("team:p-001:nurse-li", "email"),
        ("team:p-001:daughter", "sms"),
    }
    patient_sms = next(i for i in intents if i.recipient_id == "patient:p-001" and i.channel == "sms")
    assert patient_sms.language == "zh" and patient_sms.audience == "patient" and patient_sms.address == "+447700900001"
    caregiver = next(i for i in intents if i.role == "caregiver")
    assert caregiver.audience == "patient" and caregiver.language == "en"
    assert len({i.key for i in intents}) == len(intents)  # one key per recipient and channel


def test_escalation_reaches_the_next_level_only():
    book = IncidentBook(LifecyclePolicy(escalate_after_s={"critical": 300.0}, remind_every_s={"critical": 600.0}))
    book.alert_raised(alert("a1", "critical"), DAY)
    escalated = book.tick(DAY + 300)[0]
    intents = plan_notifications(escalated, recipients_for("p-001", PROFILE))
    assert who(intents) == {("console", "app"), ("team:p-001:on-call", "sms")}


def test_low_severity_and_joins_stay_on_the_console():
    recipients = recipients_for("p-001", PROFILE)
    book = IncidentBook()
    low = book.alert_raised(alert("a1", "low"), DAY)[0]
    assert who(plan_notifications(low, recipients)) == {("console", "app")}
    joined = book.alert_raised(alert("a2", "low", kind="tachycardia"), DAY + 10)[0]
    assert joined.kind == "joined"
    assert who(plan_notifications(joined, recipients)) == {("console", "app")}


def test_technical_incident_goes_to_the_patient_not_the_clinicians():
    event = IncidentBook().alert_raised(alert("a1", "low", kind="device_offline", category="technical"), DAY)[0]
    assert who(plan_notifications(event, recipients_for("p-001", PROFILE))) == {
        ("console", "app"), ("patient:p-001", "app"), ("patient:p-001", "sms")}


def test_quiet_hours_defer_non_critical_but_never_critical():
    recipients = recipients_for("p-001", PROFILE)
    high = plan_notifications(IncidentBook().alert_raised(alert("a1", "high"), NIGHT)[0], recipients)
    patient = next(i for i in high if i.recipient_id == "patient:p-001" and i.channel == "sms")
    assert patient.deliver_after == datetime(2026, 1, 15, 7, 0, tzinfo=timezone.utc).timestamp()
    assert next(i for i in high if i.recipient_id == "console").deliver_after == NIGHT
    critical = plan_notifications(IncidentBook().alert_raised(alert("a2", "critical"), NIGHT)[0], recipients)
    assert all(i.deliver_after == NIGHT and i.critical for i in critical)


def test_quiet_hours_across_midnight_and_within_a_day():
    overnight = QuietHours(time(22, 0), time(7, 0), "UTC")
    assert overnight.deferral(datetime(2026, 1, 15, 23, 0, tzinfo=timezone.utc).timestamp()) == \
        datetime(2026, 1, 16, 7, 0, tzinfo=timezone.utc).timestamp()
    assert overnight.deferral(DAY) is None
    lunch = QuietHours(time(12, 0), time(13, 0), "UTC")
    assert lunch.deferral(DAY) == datetime(2026, 1, 15, 13, 0, tzinfo=timezone.utc).timestamp()


def test_patient_without_profile_reaches_console_and_app():
    event = IncidentBook().alert_raised(replace(alert("a1", "high"), patient_id="p-x"), DAY)[0]
    assert who(plan_notifications(event, recipients_for("p-x", None))) == {("console", "app"), ("patient:p-x", "app")}


def test_not_monitored_for_a_cause_the_patient_cannot_fix_goes_to_the_ward_not_the_patient():
    """Issue 13: refused data or never seen is the ward's to fix; a last will is the patient's."""
    refused = alert("a1", "medium", kind="not_monitored", category="technical")
    refused.values = {"cause": "rejected", "reason": "schema_invalid"}
    event = IncidentBook().alert_raised(refused, DAY)[0]
    told = who(plan_notifications(event, recipients_for("p-001", PROFILE)))
    assert ("console", "app") in told and not any(r.startswith("patient:") for r, _ in told)
    assert any(r.startswith("team:") for r, _ in told)
    fixable = alert("a2", "medium", kind="not_monitored", category="technical")
    fixable.values = {"cause": "vitals_missing", "reason": "spo2"}
    told = who(plan_notifications(IncidentBook().alert_raised(fixable, DAY)[0], recipients_for("p-001", PROFILE)))
    assert any(r.startswith("patient:") for r, _ in told) and not any(r.startswith("team:") for r, _ in told)
