"""The alert desk and the outbox dispatcher on a real database (SQLite, and PostgreSQL from
deploy/local), with real channels: in-app push, SMS through the twilio package to the Twilio
stand-in, e-mail to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
import os
import uuid

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from standins.twilio_api import TwilioStandIn

from vigil.core.events import Alert
from vigil.shell.desk.desk import AlertChange, AlertDesk
from vigil.runtimes.shared.alerting import AlertingService
from vigil.shell.stores.desk_store import DeskStore
from vigil.core.incident import LifecyclePolicy
from vigil.shell.notify.channels.email import SmtpEmail
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.shell.notify.channels.sms import TwilioSms
from vigil.shell.notify.dispatcher import Dispatcher
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import SqlStore, WriteBatch

pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")

SID, TOKEN, FROM = "AC" + "2e" * 16, "token", "+15005550006"
T0 = 1_760_000_000.0  # 2025-10-09 08:53 UTC: daytime in London, no quiet hours
ROSTER = Roster.model_validate({"patients": [{
    "patient_id": "p-001", "language": "en",
    "notifications": {"channels": ["app", "sms"], "phone": "+447700900001"},
    "care_team": [
        {"name": "Dr Ahmed", "phone": "+447700900002", "email": "ahmed@ward.example.org", "channels": ["sms", "email"]},
        {"name": "On call", "role": "on_call", "phone": "+447700900003", "channels": ["sms"], "escalation_order": 2},
    ],
}]})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'desk.sqlite'}"
        return
    base = os.environ.get("VIGIL_DATABASE_URL", "")
    if os.environ.get("VIGIL_INTEGRATION") != "1" or not base.startswith("postgresql"):
        pytest.skip("PostgreSQL not started here: tests/run.sh starts it with deploy/local/up")
    schema = "t" + uuid.uuid4().hex[:10]  # a schema per test: no rows shared between tests
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def twilio():
    with TwilioStandIn(SID, TOKEN) as standin:
        yield standin


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, _server, _session, envelope):  # noqa: N802 (aiosmtpd's naming)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(free_port):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port)
    controller.start()
    yield controller, inbox
    controller.stop()


def alert(alert_id: str, kind: str, severity: str, t: float, **extra) -> Alert:
    return Alert(**{"alert_id": alert_id, "patient_id": "p-001", "kind": kind, "category": "clinical", "severity": severity,
                    "rule": f"{kind} rule", "values": {"spo2_pct": 89} if kind == "hypoxaemia" else {"hr_bpm": 131},
                    "onset_t": t - 300, "raised_t": t, "news2": None, "contributors": [], "model_version": None,
                    "cleared_t": None, "baselines": {"hr": 74.0, "spo2": 97.0}, "trends": {}, **extra})


class Ward:
    """One 'process': store, desk (through the service) and dispatcher over one database."""

    def __init__(self, url: str, twilio: TwilioStandIn, smtp_port: int | None = None, *,
                 policy: LifecyclePolicy | None = None, clock=lambda: T0) -> None:
        self.now = T0
        self.store = SqlStore(url)
        self.hub = PushHub()
        channels = {"app": AppPush(self.hub), "sms": TwilioSms(SID, TOKEN, FROM, api_base=twilio.url, timeout=5)}
        if smtp_port:
            channels["email"] = SmtpEmail("127.0.0.1", smtp_port, "vigil@ward.example.org")
        settings = VigilSettings(escalate_critical_s=300, remind_critical_s=120, incident_settle_s=600)
        self.service = AlertingService(settings, Registry(ROSTER), self.store.engine, self.store.write, Metrics(),
                                       clock=lambda: self.now, channels=channels)
        if policy is not None:
            self.service.desk.book.policy = policy
        self.service.desk.restore()
        self.desk: AlertDesk = self.service.desk
        self.dispatcher: Dispatcher = self.service.dispatcher
        self.desk_store: DeskStore = self.service.store

    def take(self, *changes: AlertChange) -> WriteBatch:
        batch = WriteBatch()
        self.desk.take(list(changes), batch)
        self.store.write(batch)
        return batch

    def tick(self, t: float) -> None:
        self.now = t
        self.service.tick(t)

    async def close(self) -> None:
        await self.dispatcher.close()
        self.store.close()


async def test_related_alerts_make_one_incident_with_audit_and_outbox_in_one_commit(db_url, twilio):
    ward = Ward(db_url, twilio)
    first = ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "high", T0), T0))
    second = ward.take(AlertChange("raised", alert("a2", "tachycardia", "high", T0 + 20), T0 + 20))
    incidents = ward.desk_store.incidents()
    assert len(incidents) == 1 and incidents[0]["state"] == "open" and incidents[0]["severity"] == "high"
    incident_id = incidents[0]["incident_id"]
    assert [(a["event"], a["alert_id"]) for a in ward.desk_store.audit(incident_id)] == [("opened", "a1"), ("joined", "a2")]
    # Opening pages patient (app, sms), first-level doctor (sms, email - no email channel here) and the console;
    # the second alert joins quietly (console only): no storm.
    assert {(r.recipient_id, r.channel) for r in first.outbox} == {
        ("console", "app"), ("patient:p-001", "app"), ("patient:p-001", "sms"),
        ("team:p-001:dr-ahmed", "sms"), ("team:p-001:dr-ahmed", "email")}
    assert {(r.recipient_id, r.channel) for r in second.outbox} == {("console", "app")}
    sms_row = next(r for r in first.outbox if r.recipient_id == "patient:p-001" and r.channel == "sms")
    assert "999" in sms_row.body and sms_row.text_source == "template"
    doctor_row = next(r for r in first.outbox if r.recipient_id == "team:p-001:dr-ahmed" and r.channel == "sms")
    assert "p-001" in doctor_row.subject and "89" in doctor_row.body  # the clinician sees who and the numbers
    # The same changes again (a replayed Kafka record, a reprocessed batch): nothing new.
    again = ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "high", T0), T0),
                      AlertChange("raised", alert("a2", "tachycardia", "high", T0 + 20), T0 + 20))
    assert not again.outbox and not again.incident_audit
    assert len(ward.desk_store.outbox_rows()) == len(first.outbox) + len(second.outbox)
    await ward.close()


async def test_everything_sent_once_across_a_restart_and_a_crash_mid_send(db_url, twilio):
    ward = Ward(db_url, twilio)
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "critical", T0), T0))
    # A dispatcher claims the rows and dies before sending: they are leased, not lost.
    claimed = ward.desk_store.claim_due(T0, lease_s=60)
    assert claimed and all(r["status"] == "pending" for r in claimed)  # as read, before the claim
    assert await ward.dispatcher.deliver_due() == 0  # leased to the dead one
    await ward.close()

    restarted = Ward(db_url, twilio)
    assert len(restarted.desk.book.incidents) == 1  # the unresolved incident is back in the book
    restarted.take(AlertChange("raised", alert("a1", "hypoxaemia", "critical", T0), T0))  # replay: no-op
    restarted.now = T0 + 61  # the lease ran out
    delivered = await restarted.dispatcher.deliver_due()
    assert delivered == len(claimed)  # handled: all sent but e-mail (not configured here: failed, loudly)
    rows = restarted.desk_store.outbox_rows()
    assert {r["status"] for r in rows if r["channel"] != "email"} == {"sent"}
    assert [r["status"] for r in rows if r["channel"] == "email"] == ["failed"]
    assert await restarted.dispatcher.deliver_due() == 0
    assert sorted(m["to"] for m in twilio.messages) == ["+447700900001", "+447700900002"]  # once each
    assert [e.to_json()["key"] for e in restarted.hub.events("console")] == [
        r["key"] for r in rows if r["recipient_id"] == "console"]
    await restarted.close()


async def test_unacknowledged_critical_escalates_and_reminds_until_acknowledged(db_url, twilio):
    ward = Ward(db_url, twilio)
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "critical", T0), T0))
    incident_id = ward.desk_store.incidents()[0]["incident_id"]
    ward.tick(T0 + 120)  # reminder 1 to the first level
    ward.tick(T0 + 300)  # escalation to level 2 (on call)
    events = [a["event"] for a in ward.desk_store.audit(incident_id)]
    assert events == ["opened", "reminder", "escalated"]
    rows = ward.desk_store.outbox_rows(incident_id=incident_id)
    assert {r["recipient_id"] for r in rows if r["event"] == "escalated"} == {"console", "team:p-001:on-call"}
    assert {r["recipient_id"] for r in rows if r["event"] == "reminder"} == {"console", "team:p-001:dr-ahmed"}
    ward.now = T0 + 310
    row = ward.service.act("a1", "acknowledge", "dr.ahmed")  # by alert id: its incident
    assert row["state"] == "acknowledged" and row["acknowledged_by"] == "dr.ahmed"
    before = len(ward.desk_store.outbox_rows())
    ward.tick(T0 + 3600)
    assert len(ward.desk_store.outbox_rows()) == before  # no more reminders
    row = ward.service.act(incident_id, "resolve", "dr.ahmed", "seen at home, oxygen checked")
    audit = ward.desk_store.audit(incident_id)
    assert [(a["event"], a["actor"]) for a in audit[-2:]] == [("acknowledged", "dr.ahmed"), ("resolved", "dr.ahmed")]
    assert row["state"] == "resolved" and row["resolution"] == "seen at home, oxygen checked"
    assert ward.service.act("in-unknown", "acknowledge", "x") is None
    await ward.close()


async def test_temporary_failures_retry_with_backoff_and_permanent_ones_fail(db_url, twilio):
    ward = Ward(db_url, twilio)
    twilio.fail_next(2, 503)
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "critical", T0), T0))
    await ward.dispatcher.deliver_due()
    retrying = [r for r in ward.desk_store.outbox_rows() if r["channel"] == "sms"]
    assert {r["status"] for r in retrying} == {"pending"} and all(r["next_attempt_t"] > T0 for r in retrying)
    assert all("503" in r["last_error"] or "Temporary" in r["last_error"] for r in retrying)
    ward.now = max(r["next_attempt_t"] for r in retrying) + 0.1
    await ward.dispatcher.deliver_due()
    assert {r["status"] for r in ward.desk_store.outbox_rows() if r["channel"] == "sms"} == {"sent"}
    assert {r["attempts"] for r in ward.desk_store.outbox_rows() if r["channel"] == "sms"} == {2}
    await ward.close()


async def test_a_refused_number_fails_at_once_and_other_messages_still_go(db_url, twilio):
    ward = Ward(db_url, twilio)
    twilio.fail_next(1, 400, code=21211, message="The 'To' number is not a valid phone number.")
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "critical", T0), T0))
    await ward.dispatcher.deliver_due()
    rows = ward.desk_store.outbox_rows()
    opened = [r for r in rows if r["event"] == "opened"]
    assert sorted(r["status"] for r in opened if r["channel"] == "sms") == ["failed", "sent"]
    failed = next(r for r in opened if r["status"] == "failed" and r["channel"] == "sms")
    assert failed["attempts"] == 1 and "permanent" in failed["last_error"]
    assert {r["status"] for r in opened if r["channel"] == "app"} == {"sent"}
    # The two SMS go out side by side, so the refused number is the patient's or the doctor's. If its
    # owner was reached on no channel at all (the doctor, whose e-mail fails here too), the desk
    # escalated at once to the next level (issue 13): new messages, not a retry of the refused one.
    reached = any(r["recipient_id"] == failed["recipient_id"] and r["status"] == "sent" for r in opened)
    escalated = [r for r in rows if r["event"] == "escalated"]
    assert bool(escalated) == (not reached)
    await ward.close()


async def test_email_reaches_a_real_smtp_server_with_its_idempotency_key(db_url, twilio, smtp):
    controller, inbox = smtp
    ward = Ward(db_url, twilio, smtp_port=controller.port)
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "high", T0), T0))
    await ward.dispatcher.deliver_due()
    await asyncio.sleep(0.1)
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    row = next(r for r in ward.desk_store.outbox_rows() if r["channel"] == "email")
    assert message["To"] == "ahmed@ward.example.org" and row["key"] in message["Message-ID"]
    assert row["status"] == "sent" and "p-001" in message["Subject"]
    await ward.close()


async def test_a_resolved_incident_leaves_nothing_behind_in_the_desk(db_url, twilio):
    ward = Ward(db_url, twilio)
    ward.take(AlertChange("raised", alert("a1", "hypoxaemia", "high", T0), T0))
    cleared = alert("a1", "hypoxaemia", "high", T0, cleared_t=T0 + 60)
    ward.take(AlertChange("cleared", cleared, T0 + 60))
    assert set(ward.desk.alerts) == {"a1"}  # kept while the incident settles (reminders quote it)
    ward.tick(T0 + 60 + 600)
    assert ward.desk_store.incidents()[0]["state"] == "resolved"
    assert ward.desk.alerts == {} and ward.desk.book.incidents == {}
    await ward.close()
