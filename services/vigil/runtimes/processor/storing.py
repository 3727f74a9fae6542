"""Everything a decided batch implies, stored in a fixed order, then its acknowledgement.

1. series (InfluxDB, idempotent by measurement, tags and time), while the alert records are
   delivered; 2. alert rows to PostgreSQL only once Kafka has acknowledged the alert records: a
   row there means 'announced', and a replay skips known alert ids, so a row must never exist
   for an alert that never reached the topic. In the same transaction (`ward_trends`), the
   batch's readings and scores, which keep the ward overview's `vital_latest` and
   `vital_rollups` current (shell/trends/hybrid_trends.py): inserted 'on conflict do nothing',
   and only the rows the insert added are rolled up, so a redelivered batch counts nothing
   twice; 3. scores and dead letters; 4. patient state to the
   table (changelog) last, so a state restored after a crash is never ahead of what is stored;
   5. the batch's events acknowledged. Batches come here in order from the InOrderStore, which
   retries a failed `store` in place; `acknowledge` follows a successful one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from vigil.runtimes.processor.ack_order import AckOrder
from vigil.runtimes.processor.deciding import Decided, Sender
from vigil.runtimes.processor.health import Failures
from vigil.runtimes.processor.patient_cache import TablePatientStates
from vigil.runtimes.processor.timings import BatchTimings
from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.stores.sql import WriteBatch


class SeriesWriter(Protocol):
    """InfluxDB's share: readings and model scores as time series."""

    def write(self, rows: list[ReadingRow]) -> Awaitable[None]: ...

    def write_scores(self, rows: list[ScoreRow]) -> Awaitable[None]: ...


class DecidedStore:
    """Stores decided batches (the InOrderStore's `store`), acknowledges them (`acknowledge`), and
    reports failed attempts (`failed`), which the InOrderStore retries in place."""

    def __init__(self, alerts: Sender, series: SeriesWriter, write_alert_rows: Callable[[WriteBatch], None],
                 patients: TablePatientStates, timings: BatchTimings, failures: Failures,
                 ward_trends: bool = False) -> None:
        self.alerts = alerts
        self.series = series
        self.write_alert_rows = write_alert_rows  # blocking (SQL): run on the default executor
        self.patients = patients
        self.timings = timings
        self.failures = failures
        self.ward_trends = ward_trends  # readings and scores to the SQL store too (the ward overview)
        self._t_stored = 0.0
        self.ack_order = AckOrder()  # a tripwire: acknowledgements in offset order per partition

    async def store(self, decided: Decided) -> None:
        """Steps 1 to 4 (see the module docstring); safe to run again after a failure."""
        clock = time.perf_counter
        t0 = clock()
        batch = decided.batch
        if decided.retry:  # a failed attempt's deliveries cannot be awaited again: send again
            decided.deliveries = [await self.alerts.send(key=key, value=value) for key, value in decided.alerts]
        decided.retry = True
        await asyncio.gather(self.series.write(batch.readings), self.series.write_scores(batch.scores),
                             *decided.deliveries)
        t_series = clock()
        rows = WriteBatch(alerts=batch.alerts, alert_events=batch.alert_events,
                          readings=batch.readings if self.ward_trends else [],
                          scores=batch.scores if self.ward_trends else [])
        if rows:
            await asyncio.get_running_loop().run_in_executor(None, self.write_alert_rows, rows)
        for topic, key, value in decided.others:
            # Not awaited: the commit flushes the producer before it moves the offset on.
            await topic.send(key=key, value=value)
        t_stored = clock()
        decided.stages["series"] = t_series - t0
        decided.stages["stored"] = t_stored - t_series
        self._t_stored = t_stored
        self.patients.save(decided.snapshot)

    def acknowledge(self, decided: Decided) -> None:
        """Step 5: the events go, and with them (at the next commit) their offsets."""
        for event in decided.events:
            self.ack_order.acknowledging(event.message)
            event.ack()
        t_end = time.perf_counter()
        self.timings.batch(len(decided.events), {**decided.stages, "state": t_end - self._t_stored,
                                                 "total": t_end - decided.started})
        self.failures.stored()

    def failed(self, decided: Decided, exc: Exception, retry_in_s: float | None) -> None:
        self.failures.failed("batch storing", exc, len(decided.events), retry_in_s)
