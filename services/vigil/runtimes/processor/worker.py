"""What the worker's agents do: decide batches one at a time, store them in order behind.

Batches are decided one at a time (the agent and the silence check share the monitors), and
stored in the order they were decided (the InOrderStore: each store waits for the one before
it). A failure is retried in place and never leaves the agent: Faust acks a batch's events when
the agent's loop body returns, and also when an agent raises and its generator is closed
(faust-streaming#527, robinhood/faust#604, where a crashed batch is lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from vigil.runtimes.processor.deciding import BatchDecider, Decided
from vigil.runtimes.processor.health import Failures
from vigil.runtimes.processor.patient_cache import TablePatientStates
from vigil.runtimes.processor.silence import SilenceWatch
from vigil.runtimes.processor.timings import BatchTimings
from vigil.shell.pipeline.coverage_report import CoverageReport
from vigil.shell.pipeline.in_order import Backoff, InOrderStore

log = logging.getLogger("vigil.processor")


class Worker:
    """The agent's and the silence timer's work, with the lock and the retries they share."""

    def __init__(self, decider: BatchDecider, stores: InOrderStore[Decided], patients: TablePatientStates,
                 silence: SilenceWatch, failures: Failures, timings: BatchTimings, *,
                 retry: Backoff = Backoff(), sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 enrolled: Callable[[], Iterable[bytes]] = lambda: (), coverage: CoverageReport | None = None) -> None:
        self.decider = decider
        self.coverage = coverage  # updated after each check: /healthz and the coverage gauges
        self.enrolled = enrolled  # every enrolled patient's key: the ones never seen are watched too
        self.stores = stores
        self.patients = patients
        self.silence = silence
        self.failures = failures
        self.timings = timings
        self.retry = retry
        self.sleep = sleep
        self.deciding = asyncio.Lock()

    async def take(self, events: list[Any]) -> None:
        """One batch from `take_events`: decided back to back while the ones before it are stored.

        Each event holds one extra reference until its batch is stored, so its offset commits
        only after that, whatever Faust does when the loop body returns."""
        taken = time.time()
        for event in events:
            event.message.incref()  # released by DecidedStore.acknowledge
        async with self.deciding:
            await self.state_settled()
            decided = await self.decide_until_done(events)
            waiting = time.time()
            await self.stores.submit(decided)
        self.timings.taken(taken - min(event.message.timestamp for event in events), time.time() - waiting)

    async def check_silence(self, mine: Callable[[], set[int]], every_s: float) -> None:
        """Raise `device_offline` for this worker's patients whose wearable has gone quiet, and
        run the coverage timers (core.coverage) of every patient it watches.

        `mine()` names the readings partitions this worker holds now. The alerts take the same
        path as a batch's (sent, then stored in order); their ids come from the last reading's
        time, so a repeat after a crash is skipped. A failure waits for the next check."""
        async with self.deciding:
            partitions = mine()
            if not partitions:
                return
            await self.state_settled()
            now = time.time()
            silent = self.silence.silent(self.patients.patient_keys(), partitions, now)
            # Coverage (issue 13): every patient in memory (a last will, a clock, a refusal flood
            # are due between readings) and every enrolled one of these partitions, seen or not;
            # only the ones silent on this worker's clock may be judged silent.
            watched = [monitor.patient_id for monitor in self.patients.in_memory()]
            patients = list(dict.fromkeys([*silent, *watched, *self.silence.mine(self.enrolled(), partitions)]))
            if not patients:
                return
            try:
                decided = await self.decider.decide_silence(patients, now, set(silent))
                if self.coverage is not None:
                    self.coverage.update(self.patients.in_memory(), now)
                if decided is None:
                    return
            except Exception as exc:
                self.failures.failed("silence check", exc, 0, every_s)
                self.patients.forget()
                return
            log.info("devices silent", extra={"patients": sorted(key.decode() for key, _ in decided.snapshot)})
            await self.stores.submit(decided)

    async def state_settled(self) -> None:
        """After the cache was dropped (rebalance, failure) state comes from the table, so every
        batch still being stored must be in it first."""
        if self.patients.forgotten:
            await self.stores.settled()

    async def decide_until_done(self, events: list[Any]) -> Decided:
        delay = self.retry.first_s
        while True:
            try:
                return await self.decider.decide(events)
            except Exception as exc:
                self.failures.failed("batch scoring", exc, len(events), delay)
                await self.stores.settled()  # the table then holds everything decided before this batch
                self.patients.forget()  # the in-memory state may be ahead of the table: re-read it
                await self.sleep(delay)
                delay = min(delay * 2, self.retry.max_s)
