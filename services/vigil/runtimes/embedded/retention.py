"""The embedded runtime's retention purge: at start, then every VIGIL_PURGE_EVERY_S, each kind past
its VIGIL_RETAIN_*_DAYS deleted chunk by chunk on the writer thread (the store's one writer, so the
purge never races a batch, and batches queue between chunks: ingest never waits on a long DELETE).
What is purged and what is kept whatever its age: vigil.shell.stores.retention."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.retention import Purger, Retention
from vigil.shell.stores.writer import BackgroundWriter

log = logging.getLogger("vigil.runtime")


class RetentionPurge:
    def __init__(self, settings: VigilSettings, writer: BackgroundWriter, purger: Purger, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.writer = writer
        self.purger = purger
        self.metrics = metrics
        self.clock = clock

    async def purge_kind(self, kind: str, before_t: float) -> dict[str, int]:
        """Delete one kind's rows older than `before_t` (retention.py says what is kept whatever its
        age), chunk by chunk on the writer thread: ingest batches queue between chunks, never behind
        one long DELETE. Counted in vigil_purged_rows_total{kind} and logged. Rows per table."""
        totals: dict[str, int] = {}
        while True:
            deleted = await asyncio.wrap_future(self.writer.call(partial(self.purger.chunk, kind, before_t)))
            for table, rows in deleted.items():
                totals[table] = totals.get(table, 0) + rows
            if all(rows < self.purger.chunk_rows for rows in deleted.values()):
                break
        rows = sum(totals.values())
        self.metrics.purged.labels(kind).inc(rows)
        log.info("retention purge", extra={"kind": kind, "rows": rows, "tables": ",".join(f"{t}={n}" for t, n in totals.items()),
                                           "before_t": round(before_t, 3),
                                           "retention_days": self.settings.retention_days()[kind]})
        return totals

    async def purge(self) -> dict[str, int]:
        """Every kind with a retention (VIGIL_RETAIN_*_DAYS > 0): rows deleted per kind. A kind that
        fails (the audit trigger refusing, say) is logged and the others still run."""
        purged: dict[str, int] = {}
        for kind, before_t in Retention(self.settings.retention_days()).cutoffs(self.clock()).items():
            try:
                totals = await self.purge_kind(kind, before_t)
            except Exception:
                log.exception("retention purge failed", extra={"kind": kind})
                continue
            purged[kind] = sum(totals.values())
            if kind == "dead_letters":
                self._dead_letters_purged(totals, before_t)
        return purged

    def _dead_letters_purged(self, totals: dict[str, int], before_t: float) -> None:
        rows = totals.get("dead_letters", 0)
        self.metrics.dead_letters_purged.inc(rows)
        log.info("dead letters purged", extra={"rows": rows, "counts": totals.get("dead_letter_counts", 0),
                                               "before_t": round(before_t, 3),
                                               "retention_days": self.settings.deadletter_retention_days})

    async def purge_dead_letters(self) -> int:
        """Only the dead letters (and counts) past VIGIL_DEADLETTER_RETENTION_DAYS; the rows deleted."""
        if self.settings.deadletter_retention_days <= 0:
            return 0
        before_t = self.clock() - self.settings.deadletter_retention_days * 86400.0
        totals = await self.purge_kind("dead_letters", before_t)
        self._dead_letters_purged(totals, before_t)
        return totals.get("dead_letters", 0)

    async def run_forever(self) -> None:
        """At start, then every VIGIL_PURGE_EVERY_S (an hour)."""
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("retention purge failed")
            await asyncio.sleep(self.settings.purge_every_s)

