"""In-app push to the web console and the patient app, over Server-Sent Events.

`PushHub` lives in the process that serves HTTP. Each "app" delivery becomes an event in a bounded
ring per inbox ("console", "patient:p-001", ...) and is fanned out to that inbox's live
subscribers. SSE rather than WebSocket: the traffic is one way, EventSource reconnects by itself
and sends `Last-Event-ID`, and it passes through proxies as plain HTTP.

Memory is bounded everywhere: the ring keeps the last `ring_size` events per inbox, each
subscriber's queue is bounded, and a subscriber that falls behind is dropped (its stream ends)
rather than buffered; its browser reconnects with `Last-Event-ID` and catches up from the ring.

Event ids are integers, increasing across restarts too: the first id of a hub is its start time
in milliseconds times 1000, so an id a browser kept from the previous process is always lower
than every new one. Everything here runs on one event loop; the hub is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, SendResult

log = logging.getLogger("vigil.notify.push")

SSE_EVENT = "notification"


@dataclass(frozen=True, slots=True)
class PushEvent:
    id: int
    key: str
    inbox: str
    audience: str
    subject: str
    body: str
    critical: bool
    payload: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0  # unix seconds when the hub accepted it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Subscription:
    """One live listener on one inbox. Iterate it; iteration ends when the hub drops it."""

    def __init__(self, hub: "PushHub", inbox: str, maxsize: int) -> None:
        self.hub, self.inbox = hub, inbox
        self.queue: asyncio.Queue[PushEvent | None] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False

    def _offer(self, event: PushEvent | None) -> bool:
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            return False

    def _end(self) -> None:
        # Make room for the end marker: what is discarded is still in the ring for the replay.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def get(self, timeout: float | None = None) -> PushEvent | None:
        """The next event; None once dropped or closed. Raises TimeoutError after `timeout`."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def __aiter__(self) -> AsyncIterator[PushEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    def close(self) -> None:
        self.hub.unsubscribe(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PushHub:
    def __init__(self, ring_size: int = 500, subscriber_queue: int = 256, remembered_keys: int = 50_000) -> None:
        self.ring_size = ring_size
        self.subscriber_queue = subscriber_queue
        self._rings: dict[str, deque[PushEvent]] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        # key -> event: idempotency memory, bounded (oldest forgotten first). The outbox already
        # never resends a row marked sent; this catches the crash-window resend within one process.
        self._by_key: OrderedDict[str, PushEvent] = OrderedDict()
        self._remembered_keys = remembered_keys
        self._next_id = int(time.time() * 1000) * 1000
        self.first_id = self._next_id + 1
        self._evicted_upto: dict[str, int] = {}  # inbox -> id of the newest event the ring let go
        self.dropped_subscribers = 0

    def publish(self, delivery: Delivery) -> tuple[PushEvent, bool]:
        """Append to the inbox's ring and fan out. Returns (event, True if new). The same key
        again returns the first event and broadcasts nothing."""
        if (known := self._by_key.get(delivery.key)) is not None:
            return known, False
        self._next_id += 1
        event = PushEvent(id=self._next_id, key=delivery.key, inbox=delivery.address,
                          audience=delivery.audience, subject=delivery.subject, body=delivery.body,
                          critical=delivery.critical, payload=dict(delivery.payload), t=time.time())
        self._by_key[delivery.key] = event
        if len(self._by_key) > self._remembered_keys:
            self._by_key.popitem(last=False)
        ring = self._rings.setdefault(event.inbox, deque(maxlen=self.ring_size))
        if len(ring) == ring.maxlen:
            self._evicted_upto[event.inbox] = ring[0].id
        ring.append(event)
        for subscriber in list(self._subscribers.get(event.inbox, ())):
            if not subscriber._offer(event):
                self._drop(subscriber)
        return event, True

    def events(self, inbox: str, after: int | None = None) -> list[PushEvent]:
        """What the ring still holds for `inbox`, oldest first, with id > `after`."""
        ring = self._rings.get(inbox, ())
        return [e for e in ring if after is None or e.id > after]

    def has_gap(self, inbox: str, after: int) -> bool:
        """Were events after `after` lost to the client: pushed out of the ring, or published by a
        previous process (whose ring died with it)?"""
        return after < self._evicted_upto.get(inbox, 0) or after < self.first_id - 1

    def subscribe(self, inbox: str) -> Subscription:
        subscription = Subscription(self, inbox, self.subscriber_queue)
        self._subscribers.setdefault(inbox, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        listeners = self._subscribers.get(subscription.inbox)
        if listeners is not None:
            listeners.discard(subscription)
            if not listeners:
                del self._subscribers[subscription.inbox]

    def subscriber_count(self, inbox: str | None = None) -> int:
        if inbox is not None:
            return len(self._subscribers.get(inbox, ()))
        return sum(len(s) for s in self._subscribers.values())

    def close(self) -> None:
        """End every live stream (on shutdown), so SSE handlers return promptly."""
        for listeners in list(self._subscribers.values()):
            for subscription in list(listeners):
                subscription._end()
                self.unsubscribe(subscription)

    def _drop(self, subscription: Subscription) -> None:
        subscription.dropped = True
        subscription._end()
        self.unsubscribe(subscription)
        self.dropped_subscribers += 1
        log.warning("push subscriber dropped: too slow", extra={"inbox": subscription.inbox})


class AppPush:
    """The `app` channel: hands deliveries to the hub; delivery to a browser is the stream's job."""

    name = "app"

    def __init__(self, hub: PushHub) -> None:
        self.hub = hub

    async def send(self, delivery: Delivery) -> SendResult:
        if not delivery.address.strip():
            raise PermanentFailure("app delivery without an inbox id")
        event, _new = self.hub.publish(delivery)
        return SendResult(provider_id=str(event.id))

    async def close(self) -> None:
        self.hub.close()


# -- HTTP --------------------------------------------------------------------------------------

