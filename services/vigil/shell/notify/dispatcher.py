"""The outbox dispatcher: deliver what the desk wrote, at least once, and never twice on purpose.

It claims due rows (a lease, so that a dispatcher that dies mid-send hands its rows to the next
one), sends each through its channel with the row's idempotency key, and marks it sent. A
temporary failure retries with exponential backoff and jitter; a permanent one (or running out
of attempts) marks the row failed, logs it as an error and counts it. Critical rows go first.

What "never twice" rests on: a row is marked sent right after the provider accepts it, and the
key travels with the message (Message-ID for e-mail, Idempotency-Key for webhooks, the event id
in app push), so a receiver can drop the one duplicate that a crash between the provider's
accept and our commit could cause. Twilio's Messages API has no idempotency key: for SMS that
window (milliseconds) is the only way a message could go twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.notify.channels.base import Channel, Delivery, PermanentFailure, TemporaryFailure
from vigil.shell.observability.metrics import Metrics

log = logging.getLogger("vigil.notify")

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
SEND_TIMEOUT_S = 20.0
UNDELIVERED_WINDOW_S = 3600.0  # degraded this long after a recipient was reached on no channel


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """2, 4, 8 … seconds up to 5 minutes, with ±25 % jitter so retries do not march in step."""
    base = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** max(0, attempts - 1)))
    return base * (0.75 + 0.5 * (rng or random).random())


def _told(row: dict[str, Any]) -> tuple[Any, ...]:
    """Who was to be told of what: one incident event, one recipient, all its channels."""
    return (row["incident_id"], row["recipient_id"], row["event"], row.get("revision"))


class Dispatcher:
    def __init__(
        self,
        store: DeskStore,
        channels: Mapping[str, Channel],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = 0.5,
        batch: int = 50,
        max_attempts: int = MAX_ATTEMPTS,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.metrics = metrics
        self.clock = clock
        self.poll_s = poll_s
        self.batch = batch
        self.max_attempts = max_attempts
        self._doorbell = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self.undelivered: list[tuple[float, str]] = []  # (t, reason): recipients every channel failed
        self.on_undelivered: Callable[[dict[str, Any]], None] | None = None
        self.reported: set[tuple[Any, ...]] = set()

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self._doorbell.set()

    async def run(self) -> None:
        try:
            await self.restore_undelivered()
        except Exception:  # the database may be away: the next failures will say so
            log.exception("could not restore undelivered notifications")
        while True:
            try:
                sent = await self.deliver_due()
            except Exception as exc:  # the database may be away; keep trying, say so
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("outbox pass failed")
                sent = 0
            if sent == 0:
                try:
                    async with asyncio.timeout(self.poll_s):
                        await self._doorbell.wait()
                except TimeoutError:
                    pass
                self._doorbell.clear()

    async def deliver_due(self) -> int:
        """One pass: claim what is due and send it. Returns how many rows it handled."""
        now = self.clock()
        rows = await asyncio.to_thread(self.store.claim_due, now, self.batch)
        if rows:
            # One recipient's messages on one channel go in the order they were claimed (critical
            # first, then as raised); different recipients and channels go side by side.
            queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for row in rows:
                queues.setdefault((row["recipient_id"], row["channel"]), []).append(row)
            await asyncio.gather(*(self._deliver_in_order(queue) for queue in queues.values()))
        self.metrics.outbox_due.set(await asyncio.to_thread(self.store.due_count, self.clock()))
        return len(rows)

    async def _deliver_in_order(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            await self._deliver(row)

    async def _deliver(self, row: dict[str, Any]) -> None:
        channel = self.channels.get(row["channel"])
        key = row["key"]
        if channel is None:
            await self._fail(row, f"channel {row['channel']!r} is not configured")
            return
        delivery = Delivery(
            key=key, channel=row["channel"], recipient_id=row["recipient_id"], address=row["address"],
            audience=row["audience"], subject=row["subject"], body=row["body"], payload=dict(row["payload"] or {}),
            critical=bool(row["critical"]),
        )
        async with self._slots:
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    result = await channel.send(delivery)
            except PermanentFailure as exc:
                await self._fail(row, f"permanent: {exc}")
                return
            except (TemporaryFailure, TimeoutError, OSError) as exc:
                await self._retry(row, f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:  # a channel bug must not stop the others; retry, loudly
                log.exception("channel raised unexpectedly", extra={"key": key, "channel": row["channel"]})
                await self._retry(row, f"{type(exc).__name__}: {exc}")
                return
        now = self.clock()
        await asyncio.to_thread(self.store.mark_sent, key, now, result.provider_id)
        self.sent += 1
        self.metrics.notifications.labels(row["channel"], "sent").inc()
        if row["attempts"] == 1:
            self.metrics.raise_to_send.observe(max(0.0, now - max(row["created_t"], row["deliver_after"])))
        log.info("notification sent", extra={"key": key, "channel": row["channel"], "recipient_id": row["recipient_id"],
                                             "incident_id": row["incident_id"], "event": row["event"],
                                             "attempts": row["attempts"], "provider_id": result.provider_id})

    async def _retry(self, row: dict[str, Any], error: str) -> None:
        if row["attempts"] >= self.max_attempts:
            await self._fail(row, f"gave up after {row['attempts']} attempts: {error}")
            return
        delay = backoff_s(row["attempts"])
        await asyncio.to_thread(self.store.mark_retry, row["key"], self.clock() + delay, error)
        self.metrics.notifications.labels(row["channel"], "retry").inc()
        log.warning("notification will retry", extra={"key": row["key"], "channel": row["channel"],
                                                     "attempts": row["attempts"], "retry_in_s": round(delay, 1), "error": error})

    async def _fail(self, row: dict[str, Any], error: str) -> None:
        await asyncio.to_thread(self.store.mark_failed, row["key"], error, self.clock())
        self.failed += 1
        self.last_error = error
        self.metrics.notifications.labels(row["channel"], "failed").inc()
        log.error("notification failed", extra={"key": row["key"], "channel": row["channel"], "critical": row["critical"],
                                                "recipient_id": row["recipient_id"], "incident_id": row["incident_id"],
                                                "error": error})
        await self._check_reached(row)

    async def _check_reached(self, row: dict[str, Any]) -> None:
        """Failed delivery is a monitoring failure (issue 13): when every channel of this recipient
        failed for good for this incident event, nobody was told. Say so (degraded, with the
        reason) and hand it to `on_undelivered` (the desk escalates to the next person and the
        ward console)."""
        rows = await asyncio.to_thread(self.store.outbox_rows, incident_id=row["incident_id"])
        mine = [r for r in rows if r["recipient_id"] == row["recipient_id"] and r["event"] == row["event"]]
        if not mine or any(r["status"] != "failed" for r in mine):
            return
        told = _told(row)
        if told in self.reported:  # its channels failed side by side: one report
            return
        if len(self.reported) > 10_000:
            self.reported.clear()
        self._reached_nobody(told, self.clock())
        self.metrics.delivery_failed.inc()
        log.error("recipient reached on no channel", extra={"incident_id": row["incident_id"], "event": row["event"],
                                                           "recipient_id": row["recipient_id"]})
        if self.on_undelivered is not None:
            try:
                self.on_undelivered(row)
            except Exception:
                log.exception("escalation of an undelivered notification failed")

    async def restore_undelivered(self, window_s: float = UNDELIVERED_WINDOW_S) -> int:
        """After a restart: recipients reached on no channel within the window are still a reason
        to be degraded (the escalation itself is the desk's, already stored). Returns how many."""
        rows = await asyncio.to_thread(self.store.failed_since, self.clock() - window_s)
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(_told(row), []).append(row)
        failed_at = {told: max(r["failed_t"] or 0.0 for r in mine) for told, mine in groups.items()
                     if all(r["status"] == "failed" for r in mine) and told not in self.reported}
        for told in sorted(failed_at, key=failed_at.__getitem__):
            self._reached_nobody(told, failed_at[told])
        return len(failed_at)

    def _reached_nobody(self, told: tuple[Any, ...], t: float) -> None:
        """Note one recipient reached on no channel for one incident event (at `t`), once."""
        incident_id, recipient_id, event, _ = told
        self.reported.add(told)
        self.undelivered.append((t, f"{recipient_id} was told of incident {incident_id} ({event}) on no channel: "
                                    "every one failed"))
        del self.undelivered[:-20]

    def undelivered_reason(self, window_s: float = UNDELIVERED_WINDOW_S) -> str | None:
        """Why the service is degraded: recipients reached on no channel lately, or None."""
        since = self.clock() - window_s
        recent = [reason for t, reason in self.undelivered if t >= since]
        if not recent:
            return None
        return f"{len(recent)} notification(s) reached nobody in the last {window_s / 60:g} min; last: {recent[-1]}"

    def health(self) -> dict[str, Any]:
        return {"channels": sorted(self.channels), "sent": self.sent, "failed": self.failed, "last_error": self.last_error,
                "undelivered": self.undelivered_reason()}

    async def close(self) -> None:
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception:
                log.exception("channel close failed", extra={"channel": channel.name})
