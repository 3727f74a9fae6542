"""The retention purge of the scaled path's PostgreSQL (and of any SQL store outside `vigil run`).

Run once by `vigil retention run`, as the schema's owner, from a cron job or a systemd timer (the
services' own roles may delete nothing), or on a schedule by a notifier that runs as the owner
(VIGIL_NOTIFIER_PURGE=true: at start, then every VIGIL_PURGE_EVERY_S). The embedded
runtime has its own schedule on its writer thread (runtimes/embedded/retention.py); what is
purged, and what is kept whatever its age, is the same: vigil.shell.stores.retention.

Why chunk by chunk in a worker thread: each chunk is one short transaction, so the notifier's
desk and outbox writes, and the gateway's and workers' inserts, wait at most a chunk, and the
event loop (the incident API, the push streams) never waits at all. Two purgers at once (two
notifiers, or a notifier and the timer) are safe: a row deleted by one is not found by the other,
and each counts only the rows it deleted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.retention import Purger, Retention

log = logging.getLogger("vigil.retention")


class SqlPurge:
    def __init__(self, settings: VigilSettings, engine: Engine, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.purger = Purger(engine, settings.purge_chunk_rows)
        self.metrics = metrics
        self.clock = clock
        self.stopping = threading.Event()  # the service stops: the worker thread ends after its chunk

    def purge_kind(self, kind: str, before_t: float) -> dict[str, int]:
        """Every row of `kind` older than `before_t` (and not kept), chunk by chunk; rows per table.
        Counted in vigil_purged_rows_total{kind} (dead letters also in vigil_dead_letters_purged_total)."""
        totals: dict[str, int] = {}
        while not self.stopping.is_set():
            deleted = self.purger.chunk(kind, before_t)
            for table, rows in deleted.items():
                totals[table] = totals.get(table, 0) + rows
            if all(rows < self.purger.chunk_rows for rows in deleted.values()):
                break
        rows = sum(totals.values())
        self.metrics.purged.labels(kind).inc(rows)
        if kind == "dead_letters":
            self.metrics.dead_letters_purged.inc(totals.get("dead_letters", 0))
        log.info("retention purge", extra={"kind": kind, "rows": rows,
                                           "tables": ",".join(f"{t}={n}" for t, n in totals.items()),
                                           "before_t": round(before_t, 3),
                                           "retention_days": self.settings.retention_days()[kind]})
        return totals

    def purge(self) -> dict[str, int]:
        """Every kind with a retention (VIGIL_RETAIN_*_DAYS > 0): rows deleted per kind. A kind that
        fails (the audit trigger refusing, the database away) is logged and left out; the others run."""
        purged: dict[str, int] = {}
        for kind, before_t in Retention(self.settings.retention_days()).cutoffs(self.clock()).items():
            try:
                purged[kind] = sum(self.purge_kind(kind, before_t).values())
            except Exception:
                log.exception("retention purge failed", extra={"kind": kind})
        return purged

    async def run_forever(self) -> None:
        """At start, then every VIGIL_PURGE_EVERY_S (an hour), in a worker thread."""
        try:
            while True:
                try:
                    await asyncio.to_thread(self.purge)
                except Exception:
                    log.exception("retention purge failed")
                await asyncio.sleep(self.settings.purge_every_s)
        finally:  # cancelled: the thread cannot be, so it stops at its next chunk (before the store closes)
            self.stopping.set()
