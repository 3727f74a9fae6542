"""One writer thread for the embedded runtime's store, so storing a batch overlaps scoring the next.

The event loop runs the broker, the MQTT source and the clinical core; a third of a batch's
time was the SQLite write. SQLite does its work with the GIL released, so a single writer
thread lets that part run on the second core while the loop scores the next batch.

Order and guarantees are unchanged: batches are written one at a time in the order they were
processed (one thread, a FIFO), each in its own transaction, and the runtime acknowledges a
batch's MQTT messages (and rings the dispatcher) only once `barrier()` says that batch is durable
(vigil.shell.pipeline.in_order waits for the barriers in order).
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from vigil.shell.stores.sql import SqlStore, WriteBatch


class BackgroundWriter:
    """Queues writes on one thread, in order; `barrier()` says when they are durable."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-writer")
        self._last: concurrent.futures.Future[None] | None = None

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
