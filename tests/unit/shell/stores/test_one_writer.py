"""One writer per SQLite file (issue 12, point 5). During `vigil bench ingest` the explanation
worker's insert failed with "database is locked" while the writer thread stored batches. Every
write of the embedded runtime now runs on the writer thread: the batches, the outbox
dispatcher's claims and marks, the explanations, clinician actions, the dead-letter purge.

The store here waits for no lock at all (SQLite busy timeout 0): a second writer would fail at
once, so zero errors means that no two writes ever overlapped."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy.exc import OperationalError

from vigil.shell.notify.channels.base import Delivery, SendResult
from vigil.shell.notify.dispatcher import Dispatcher
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.rows import AuditRow, ExplanationRow, OutboxRow, ReadingRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.tables import explanations, incident_audit, outbox, readings
from vigil.shell.stores.writer import BackgroundWriter

T = 1_760_000_000.0


def impatient_store(tmp_path) -> SqlStore:
    """A store whose connections never wait for another's lock."""
    return SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}?timeout=0")


def explanation(alert_id: str, t: float = T) -> ExplanationRow:
    return ExplanationRow(alert_id, "en", "facts", "llm", "patient text", "clinician text", None, [], 0.1, t)


def outbox_row(key: str, t: float = T) -> OutboxRow:
    return OutboxRow(key, "in-1", "p-1", "opened", 1, "console", "console", "clinician", "app", "console", "en", "high",
                     False, "subject", "body", {"event": "opened"}, "template", t, t)


def test_attack_a_second_writer_fails_on_the_writer_threads_lock_unless_it_queues_behind_it(tmp_path):
    store = impatient_store(tmp_path)
    writer = BackgroundWriter(store)
    holding, release = threading.Event(), threading.Event()

    def long_batch() -> None:  # a batch transaction in progress on the writer thread
        with store.engine.begin() as conn:
            conn.execute(readings.insert(), [ReadingRow("p-1", "d-1", T, 1)._asdict()])
            holding.set()
            release.wait(5)

    writer.call(long_batch)
    assert holding.wait(5)
    with pytest.raises(OperationalError, match="locked"):
        DeskStore(store.engine).save_explanation(explanation("al-bare"))  # what the explanation worker did
    queued = threading.Thread(target=DeskStore(store.engine, writer.run).save_explanation, args=(explanation("al-1"),))
    queued.start()
    time.sleep(0.05)
    release.set()
    queued.join(5)
    assert store.count(explanations) == 1 and store.count(readings) == 1
    writer.close()
    store.close()


class CountingChannel:
    name = "app"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, delivery: Delivery) -> SendResult:
        self.sent.append(delivery.key)
        return SendResult(provider_id=delivery.key)

    async def close(self) -> None:
        pass


async def test_the_writer_thread_the_dispatcher_the_explanations_and_clinicians_write_one_file_without_an_error(tmp_path):
    store = impatient_store(tmp_path)
    writer = BackgroundWriter(store)
    desk = DeskStore(store.engine, writer.run)
    channel = CountingChannel()
    dispatcher = Dispatcher(desk, {"app": channel}, Metrics(), clock=lambda: T + 1, poll_s=0.005, batch=20)
    running = asyncio.create_task(dispatcher.run())
    batches, explained, actions = 300, 200, 50

    async def pipeline_batches() -> None:  # the processing loop: a batch of readings and notifications each time
        for i in range(batches):
            writer.write(WriteBatch(readings=[ReadingRow("p-1", f"d-{i}", T + s, s) for s in range(20)],
                                    outbox=[outbox_row(f"nt-b{i}-{k}") for k in range(2)]))
            if i % 5 == 0:
                await writer.barrier()
                dispatcher.wake()
            await asyncio.sleep(0)

    async def explanation_worker(worker: int) -> None:  # four of them, as ExplanationWorker runs
        for i in range(worker, explained, 4):
            await asyncio.to_thread(desk.save_explanation, explanation(f"al-{i}"), [outbox_row(f"nt-e{i}")])
            dispatcher.wake()

    async def clinicians() -> None:  # acknowledge and resolve: write_and_wait from a request's thread
        for i in range(actions):
            await asyncio.to_thread(writer.write_and_wait, WriteBatch(incident_audit=[
                AuditRow(f"in-{i}", 1, "acknowledged", T, "nurse", None, {})]))

    try:
        async with asyncio.timeout(60):
            await asyncio.gather(pipeline_batches(), clinicians(), *(explanation_worker(w) for w in range(4)))
            await writer.barrier()
            expected = batches * 2 + explained
            while len(channel.sent) < expected or desk.due_count(T + 1):
                dispatcher.wake()
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert dispatcher.last_error is None and dispatcher.failed == 0
    assert store.count(readings) == batches * 20
    assert store.count(explanations) == explained
    assert store.count(incident_audit) == actions
    assert store.count(outbox) == expected == len(set(channel.sent)) == len(channel.sent)
    assert {row["status"] for row in desk.outbox_rows(limit=10_000)} == {"sent"}
    writer.close()
    store.close()
