"""The outbox dispatcher on its own: fake channels, a fake clock, a SQLite outbox in tmp_path.

Rows go into the outbox table as the desk's commit would put them; what the dispatcher did is
read back through DeskStore.outbox_rows.
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, SendResult, TemporaryFailure
from vigil.shell.notify.dispatcher import Dispatcher
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import outbox

T0 = 1_760_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeChannel:
    """Records what it is asked to send; fails as told, per key, for the next attempts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Delivery] = []
        self.failures: dict[str, list[Exception]] = {}
        self.closed = False

    def fail(self, key: str, *errors: Exception) -> None:
        self.failures.setdefault(key, []).extend(errors)

    async def send(self, delivery: Delivery) -> SendResult:
        pending = self.failures.get(delivery.key)
        if pending:
            raise pending.pop(0)
        self.sent.append(delivery)
        return SendResult(provider_id=f"{self.name}-{len(self.sent)}")

    async def close(self) -> None:
        self.closed = True


def outbox_row(key: str, *, channel: str = "sms", critical: bool = False, created_t: float = T0,
               deliver_after: float = T0) -> dict[str, object]:
    return {"key": key, "incident_id": "in-1", "patient_id": "p-001", "event": "opened", "revision": 1,
            "recipient_id": "team:p-001:dr-ahmed", "role": "clinician", "audience": "clinician", "channel": channel,
            "address": "+447700900002", "language": "en", "severity": "critical" if critical else "high",
            "critical": critical, "subject": f"subject {key}", "body": f"body {key}", "payload": {"event": "opened"},
            "text_source": "template", "status": "pending", "attempts": 0, "deliver_after": deliver_after,
            "next_attempt_t": deliver_after, "lease_until": None, "created_t": created_t, "sent_t": None,
            "failed_t": None, "provider_id": None, "last_error": None}


class Outbox:
    def __init__(self, path) -> None:
        self.sql = SqlStore(f"sqlite:///{path / 'outbox.sqlite'}")
        self.store = DeskStore(self.sql.engine)

    def add(self, *rows: dict[str, object]) -> None:
        with self.sql.engine.begin() as conn:
            conn.execute(insert(outbox), list(rows))

    def row(self, key: str) -> dict[str, object]:
        (found,) = [r for r in self.store.outbox_rows() if r["key"] == key]
        return found


@pytest.fixture
def box(tmp_path):
    box = Outbox(tmp_path)
    yield box
    box.sql.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sms():
    return FakeChannel("sms")


def dispatcher(box: Outbox, clock: Clock, *channels: FakeChannel, **options) -> Dispatcher:
    return Dispatcher(box.store, {c.name: c for c in channels}, Metrics(), clock=clock, **options)


async def test_due_rows_are_sent_critical_first_and_marked_sent(box, clock, sms):
    box.add(outbox_row("k-high", created_t=T0 - 10), outbox_row("k-critical", critical=True, created_t=T0))
    sender = dispatcher(box, clock, sms, batch=1)
    assert await sender.deliver_due() == 1
    assert [d.key for d in sms.sent] == ["k-critical"]  # later, but critical
    assert await sender.deliver_due() == 1
    assert [d.key for d in sms.sent] == ["k-critical", "k-high"]
    assert await sender.deliver_due() == 0
    row = box.row("k-critical")
    assert (row["status"], row["attempts"], row["sent_t"], row["provider_id"], row["lease_until"]) == (
        "sent", 1, T0, "sms-1", None)
    delivery = sms.sent[0]
    assert (delivery.address, delivery.subject, delivery.body, delivery.critical) == (
        "+447700900002", "subject k-critical", "body k-critical", True)
    assert sender.health()["sent"] == 2 and sender.health()["failed"] == 0


async def test_a_row_is_not_sent_before_it_is_due(box, clock, sms):
    box.add(outbox_row("k-later", deliver_after=T0 + 60))  # e.g. held back by quiet hours
    sender = dispatcher(box, clock, sms)
    assert await sender.deliver_due() == 0 and sms.sent == []
    clock.now = T0 + 60
    assert await sender.deliver_due() == 1 and [d.key for d in sms.sent] == ["k-later"]


async def test_a_temporary_failure_retries_with_growing_backoff(box, clock, sms):
    box.add(outbox_row("k1"))
    sms.fail("k1", TemporaryFailure("503 from the provider"), TemporaryFailure("503 again"))
    sender = dispatcher(box, clock, sms)
    assert await sender.deliver_due() == 1
    row = box.row("k1")
    assert (row["status"], row["attempts"]) == ("pending", 1) and "503 from the provider" in row["last_error"]
    assert T0 + 1.5 <= row["next_attempt_t"] <= T0 + 2.5  # 2 s, with ±25 % jitter
    assert await sender.deliver_due() == 0  # not yet due again
    clock.now = row["next_attempt_t"]
    assert await sender.deliver_due() == 1
    row = box.row("k1")
    assert (row["status"], row["attempts"]) == ("pending", 2)
    assert clock.now + 3.0 <= row["next_attempt_t"] <= clock.now + 5.0  # then 4 s
    clock.now = row["next_attempt_t"]
    assert await sender.deliver_due() == 1
    row = box.row("k1")
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert [d.key for d in sms.sent] == ["k1"]  # sent once


async def test_a_permanent_failure_fails_the_row_at_once(box, clock, sms):
    box.add(outbox_row("k-bad"), outbox_row("k-good"))
    sms.fail("k-bad", PermanentFailure("not a valid phone number"))
    sender = dispatcher(box, clock, sms)
    assert await sender.deliver_due() == 2
    bad = box.row("k-bad")
    assert (bad["status"], bad["attempts"]) == ("failed", 1) and bad["last_error"].startswith("permanent:")
    assert box.row("k-good")["status"] == "sent"  # the others still go
    clock.now += 3600
    assert await sender.deliver_due() == 0  # never retried
    assert sender.health()["failed"] == 1 and "not a valid phone number" in sender.health()["last_error"]


async def test_running_out_of_attempts_fails_the_row(box, clock, sms):
    box.add(outbox_row("k1"))
    sms.fail("k1", TemporaryFailure("down"), TimeoutError(), TemporaryFailure("still down"))
    sender = dispatcher(box, clock, sms, max_attempts=2)
    await sender.deliver_due()
    clock.now = box.row("k1")["next_attempt_t"]
    await sender.deliver_due()
    row = box.row("k1")
    assert (row["status"], row["attempts"]) == ("failed", 2) and row["last_error"].startswith("gave up after 2 attempts")
    assert sms.sent == []


async def test_a_channel_that_is_not_configured_fails_the_row(box, clock, sms):
    box.add(outbox_row("k-mail", channel="email"))
    sender = dispatcher(box, clock, sms)
    assert await sender.deliver_due() == 1
    row = box.row("k-mail")
    assert row["status"] == "failed" and "'email' is not configured" in row["last_error"]


async def test_a_lease_that_runs_out_lets_another_pass_send(box, clock, sms):
    box.add(outbox_row("k1", critical=True))
    # A dispatcher claims the row and dies before sending: the row is leased to it, not lost.
    (claimed,) = box.store.claim_due(T0, lease_s=60)
    assert box.row("k1")["status"] == "sending"
    sender = dispatcher(box, clock, sms)
    clock.now = T0 + 59
    assert await sender.deliver_due() == 0 and sms.sent == []  # still leased to the dead one
    clock.now = T0 + 61
    assert await sender.deliver_due() == 1
    row = box.row("k1")
    assert (row["status"], row["attempts"]) == ("sent", 2)  # the dead pass's attempt counts
    assert [d.key for d in sms.sent] == [claimed["key"]]


async def test_close_closes_every_channel(box, clock, sms):
    app = FakeChannel("app")
    sender = dispatcher(box, clock, sms, app)
    await sender.close()
    assert sms.closed and app.closed


# -- held messages (quiet hours) stay true and arrive in order ----------------------------------

def held_row(key: str, *, revision: int, event: str = "opened", critical: bool = False, created_t: float = T0,
             deliver_after: float = T0 + 3600, recipient: str = "patient:p-001") -> dict[str, object]:
    row = outbox_row(key, critical=critical, created_t=created_t, deliver_after=deliver_after)
    row.update(revision=revision, event=event, recipient_id=recipient, role="patient", audience="patient")
    return row


def incident_state(box: Outbox, state: str) -> None:
    from vigil.shell.stores.tables import incidents

    with box.sql.engine.begin() as conn:
        conn.execute(insert(incidents), [{"incident_id": "in-1", "patient_id": "p-001", "category": "clinical",
                                          "severity": "high", "state": state, "opened_t": T0, "updated_t": T0 + 60,
                                          "revision": 3, "escalation_level": 0, "doc": {}}])


async def test_a_held_message_is_dropped_when_its_incident_resolved_before_the_hours_end(box, clock, sms):
    incident_state(box, "resolved")
    box.add(held_row("k-held", revision=1))
    sender = dispatcher(box, clock, sms)
    clock.now = T0 + 3600
    assert await sender.deliver_due() == 0 and sms.sent == []
    row = box.row("k-held")
    assert row["status"] == "dropped" and "resolved" in row["last_error"]


async def test_a_held_soon_is_dropped_once_a_very_soon_superseded_it(box, clock, sms):
    """The attack: "will contact you soon" held by quiet hours, then the incident worsens to
    critical and "very soon" goes at once; at the end of the hours the old "soon" must not follow."""
    incident_state(box, "open")
    box.add(held_row("k-soon", revision=1))
    box.add(held_row("k-very-soon", revision=2, event="worsened", critical=True, created_t=T0 + 60, deliver_after=T0 + 60))
    sender = dispatcher(box, clock, sms)
    clock.now = T0 + 60
    assert await sender.deliver_due() == 1 and [d.key for d in sms.sent] == ["k-very-soon"]
    clock.now = T0 + 3600
    assert await sender.deliver_due() == 0 and [d.key for d in sms.sent] == ["k-very-soon"]
    assert box.row("k-soon")["status"] == "dropped" and "superseded" in box.row("k-soon")["last_error"]


async def test_held_messages_go_out_in_the_order_raised(box, clock, sms):
    """Two incidents' held messages to one patient: sent one after the other, oldest first."""
    incident_state(box, "open")
    later = held_row("k-second", revision=1, created_t=T0 + 30)
    later["incident_id"] = "in-2"
    box.add(later, held_row("k-first", revision=1, created_t=T0 + 10))
    sender = dispatcher(box, clock, sms)
    clock.now = T0 + 3600
    assert await sender.deliver_due() == 2
    assert [d.key for d in sms.sent] == ["k-first", "k-second"]


async def test_a_recipient_every_channel_failed_for_is_a_monitoring_failure(box, clock, sms):
    """Issue 13: SMS and e-mail both down for a critical page: degraded with the reason, and the
    desk is told (it escalates to the next person and the console)."""
    email = FakeChannel("email")
    box.add(outbox_row("k-sms", critical=True), outbox_row("k-mail", channel="email", critical=True))
    sms.fail("k-sms", PermanentFailure("carrier refused"))
    email.fail("k-mail", PermanentFailure("mailbox unavailable"))
    told: list[dict] = []
    sender = dispatcher(box, clock, sms, email)
    sender.on_undelivered = told.append
    assert sender.undelivered_reason() is None
    await sender.deliver_due()
    assert [row["recipient_id"] for row in told] == ["team:p-001:dr-ahmed"]
    assert "on no channel" in sender.undelivered_reason() and sender.health()["undelivered"]
    clock.now += 2 * 3600
    assert sender.undelivered_reason() is None, "degraded for an hour after, not forever"


async def test_attack_one_channel_failing_while_another_delivers_is_not_undelivered(box, clock, sms):
    email = FakeChannel("email")
    box.add(outbox_row("k-sms"), outbox_row("k-mail", channel="email"))
    sms.fail("k-sms", PermanentFailure("carrier refused"))
    told: list[dict] = []
    sender = dispatcher(box, clock, sms, email)
    sender.on_undelivered = told.append
    await sender.deliver_due()
    assert told == [] and sender.undelivered_reason() is None


async def test_a_restart_still_knows_who_was_reached_on_no_channel_and_does_not_tell_the_desk_again(box, clock, sms):
    """The reason to be degraded survives a restart (the failures are in the outbox with their
    time); the escalation was the desk's and is stored, so nothing is escalated twice."""
    email = FakeChannel("email")
    box.add(outbox_row("k-sms", critical=True), outbox_row("k-mail", channel="email", critical=True))
    sms.fail("k-sms", PermanentFailure("carrier refused"))
    email.fail("k-mail", PermanentFailure("mailbox unavailable"))
    await dispatcher(box, clock, sms, email).deliver_due()
    clock.now += 600
    restarted = dispatcher(box, clock, sms, email)
    told: list[dict] = []
    restarted.on_undelivered = told.append
    assert await restarted.restore_undelivered() == 1
    assert "team:p-001:dr-ahmed" in restarted.undelivered_reason()
    await restarted.deliver_due()
    assert told == [], "not escalated again"
    clock.now += 3600
    later = dispatcher(box, clock, sms, email)
    assert await later.restore_undelivered() == 0 and later.undelivered_reason() is None, "an hour is the window"


async def test_attack_a_restart_does_not_report_a_recipient_reached_on_another_channel(box, clock, sms):
    email = FakeChannel("email")
    box.add(outbox_row("k-sms"), outbox_row("k-mail", channel="email"))
    sms.fail("k-sms", PermanentFailure("carrier refused"))
    await dispatcher(box, clock, sms, email).deliver_due()
    restarted = dispatcher(box, clock, sms, email)
    assert await restarted.restore_undelivered() == 0 and restarted.undelivered_reason() is None
