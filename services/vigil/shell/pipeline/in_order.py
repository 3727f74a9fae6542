"""Store, then acknowledge, in order: the one component both runtimes hand decided batches to.

A decided batch is acknowledged to its source (MQTT PUBACK, Kafka offset) only once everything
it caused is stored, and batches are stored strictly in the order they were decided, so a state
restored after a crash is never ahead of the store. A bounded number wait at once: when that
many are unfinished, `submit` waits, and with it the loop that decides the next batch.

A failed store is handled by the runtime's policy: retried in place with a growing delay, forever
(the processor: nothing after it may be acknowledged first), or given up (the embedded runtime:
the batch stays unacknowledged and the broker redelivers it; later batches carry on).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("vigil.in_order")
Batch = TypeVar("Batch")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry a failed store in place, forever: first after `first_s`, then twice as long each
    time, at most `max_s`."""

    first_s: float = 0.2
    max_s: float = 10.0


class InOrderStore(Generic[Batch]):
    """Stores batches one after another in the order submitted; acknowledges each once stored.

    `store(batch)` makes a batch durable (or waits until it is, when the runtime already started
    it); `acknowledge(batch)` then tells the source. `failed(batch, error, retry_in_s)` hears of
    every failed store: `retry_in_s` is None when the batch is given up (no `retry`)."""

    def __init__(
        self,
        store: Callable[[Batch], Awaitable[None]],
        acknowledge: Callable[[Batch], None],
        failed: Callable[[Batch, Exception, float | None], None],
        *,
        max_in_flight: int,
        retry: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.store = store
        self.acknowledge = acknowledge
        self.failed = failed
        self.max_in_flight = max_in_flight
        self.retry = retry
        self.sleep = sleep
        self._unfinished: deque[asyncio.Task[None]] = deque()
        self._last: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet stored and acknowledged (or given up)."""
        self._forget_finished()
        return len(self._unfinished)

    async def submit(self, batch: Batch) -> None:
        """Store `batch` after everything submitted before it; first wait for a free place."""
        unfinished = self._unfinished
        self._forget_finished()
        while len(unfinished) >= self.max_in_flight:  # bounded: memory never grows without limit
            await asyncio.wait({unfinished[0]})
            self._forget_finished()
        self._last = asyncio.create_task(self._store_after(self._last, batch))
        unfinished.append(self._last)

    async def settled(self) -> None:
        """Wait until every batch submitted so far is stored and acknowledged (or given up)."""
        if self._last is not None:
            await asyncio.wait({self._last})

    async def drain(self, timeout: float) -> bool:
        """`settled`, for at most `timeout` seconds: False when batches were still unstored."""
        try:
            async with asyncio.timeout(timeout):
                await self.settled()
        except TimeoutError:
            return False
        return True

    def cancel(self) -> None:
        """Stop: batches not yet stored stay unacknowledged (their source redelivers them)."""
        for task in self._unfinished:
            task.cancel()
        self._unfinished.clear()

    def _forget_finished(self) -> None:
        unfinished = self._unfinished
        while unfinished and unfinished[0].done():
            unfinished.popleft()

    async def _store_after(self, previous: asyncio.Task[None] | None, batch: Batch) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # in order; the one before never raises into this one
        if not await self._store(batch):
            return
        try:
            self.acknowledge(batch)
        except Exception:
            log.exception("acknowledging a stored batch failed")

    async def _store(self, batch: Batch) -> bool:
        """Store until it is done (True), or until the policy gives up (False)."""
        delay = self.retry.first_s if self.retry is not None else None
        while True:
            try:
                await self.store(batch)
                return True
            except Exception as exc:
                self.failed(batch, exc, delay)
                if self.retry is None or delay is None:
                    return False
                await self.sleep(delay)
                delay = min(delay * 2, self.retry.max_s)
