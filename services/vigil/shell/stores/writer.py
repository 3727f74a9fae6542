"""One writer thread for the embedded runtime's store, so storing a batch overlaps scoring the next.

The event loop runs the broker, the MQTT source and the clinical core; a third of a batch's
time was the SQLite write. SQLite does its work with the GIL released, so a single writer
thread lets that part run on the second core while the loop scores the next batch.

Order and guarantees are unchanged: batches are written one at a time in the order they were
processed (one thread, a FIFO), each in its own transaction, and the runtime acknowledges a
batch's MQTT messages (and rings the dispatcher) only once `barrier()` says that batch is durable
(vigil.shell.pipeline.in_order waits for the barriers in order).

It is also the only thread that writes the file: the outbox dispatcher's and the explanation
worker's DeskStore writes and the dead-letter purge run here too (`run`, `call`), queued behind
the batches, so no write can fail on another's lock ("database is locked"). Readers never
block it (WAL).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

from vigil.shell.stores.sql import SqlStore, WriteBatch

T = TypeVar("T")


class BackgroundWriter:
    """Queues writes on one thread, in order; `barrier()` says when they are durable."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-writer",
                                                           initializer=self._mark_thread)
        self._last: concurrent.futures.Future[None] | None = None
        self._thread: threading.Thread | None = None

    def _mark_thread(self) -> None:
        self._thread = threading.current_thread()

    def call(self, write: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue any other write on the writer thread, after the batches queued so far. It does
        not move the batches' barrier: its failure is the caller's, not a batch's."""
        return self._pool.submit(write)

    def run(self, write: Callable[[], T]) -> T:
        """Do a write on the writer thread and wait for it (from any thread but the event loop's;
        on the writer thread itself, it runs at once)."""
        if threading.current_thread() is self._thread:
            return write()
        return self._pool.submit(write).result()

    def write(self, batch: WriteBatch) -> None:
        self._last = self._pool.submit(self.store.write, batch)

    def write_and_wait(self, batch: WriteBatch) -> None:
        """Write after everything queued, and block until it is durable (a clinician's action)."""
        self._last = self._pool.submit(self.store.write, batch)
        self._last.result()

    def barrier(self) -> asyncio.Future[None]:
        """Resolves when everything written so far is durable (or fails with the write's error)."""
        last = self._last
        if last is None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return asyncio.wrap_future(last)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
