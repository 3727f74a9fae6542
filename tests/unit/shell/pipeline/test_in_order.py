"""The shared store-then-acknowledge component: in order, bounded, ack only once stored."""

from __future__ import annotations

import asyncio

import pytest

from vigil.shell.pipeline.in_order import Backoff, InOrderStore


class Recorder:
    """A store whose batches finish when the test says so, and a log of what happened."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.fail: dict[int, int] = {}  # batch -> attempts that fail before one succeeds
        self.failures: list[tuple[int, str, float | None]] = []

    def gate(self, batch: int) -> asyncio.Event:
        return self.gates.setdefault(batch, asyncio.Event())

    async def store(self, batch: int) -> None:
        self.log.append(("store", batch))
        await self.gate(batch).wait()
        if self.fail.get(batch, 0) > 0:
            self.fail[batch] -= 1
            raise RuntimeError(f"store {batch} failed")
        self.log.append(("stored", batch))

    def acknowledge(self, batch: int) -> None:
        self.log.append(("ack", batch))

    def failed(self, batch: int, exc: Exception, retry_in_s: float | None) -> None:
        self.failures.append((batch, str(exc), retry_in_s))


def component(recorder: Recorder, *, max_in_flight: int = 4, retry: Backoff | None = None,
              sleeps: list[float] | None = None) -> InOrderStore[int]:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return InOrderStore(recorder.store, recorder.acknowledge, recorder.failed, max_in_flight=max_in_flight,
                        retry=retry, sleep=sleep)


def test_batches_are_stored_and_acknowledged_strictly_in_order():
    async def run() -> list[tuple[str, int]]:
        recorder = Recorder()
        stores = component(recorder)
        for batch in (1, 2, 3):
            await stores.submit(batch)
        # The last one finishes first: nothing may overtake the first.
        recorder.gate(3).set()
        recorder.gate(2).set()
        await asyncio.sleep(0.01)
        assert recorder.log == [("store", 1)], "batch 2 is not even started before 1 is stored"
        recorder.gate(1).set()
        await stores.settled()
        return recorder.log

    assert asyncio.run(run()) == [("store", 1), ("stored", 1), ("ack", 1), ("store", 2), ("stored", 2), ("ack", 2),
                                  ("store", 3), ("stored", 3), ("ack", 3)]


def test_a_batch_is_acknowledged_only_once_stored():
    async def run() -> None:
        recorder = Recorder()
        stores = component(recorder)
        await stores.submit(1)
        await asyncio.sleep(0.01)
        assert ("ack", 1) not in recorder.log and stores.in_flight == 1
        recorder.gate(1).set()
        await stores.settled()
        assert recorder.log[-1] == ("ack", 1) and stores.in_flight == 0

    asyncio.run(run())


def test_submit_waits_while_the_bound_is_reached():
    async def run() -> None:
        recorder = Recorder()
        stores = component(recorder, max_in_flight=2)
        await stores.submit(1)
        await stores.submit(2)
        third = asyncio.create_task(stores.submit(3))
        await asyncio.sleep(0.01)
        assert not third.done() and stores.in_flight == 2, "a third batch waits for a free place"
        recorder.gate(1).set()
        await asyncio.wait_for(third, 1)
        assert stores.in_flight == 2
        recorder.gate(2).set()
        recorder.gate(3).set()
        await stores.settled()
        assert [b for what, b in recorder.log if what == "ack"] == [1, 2, 3]

    asyncio.run(run())


def test_retry_policy_retries_in_place_with_backoff_and_holds_back_later_batches():
    async def run() -> None:
        recorder = Recorder()
        recorder.fail[1] = 3
        sleeps: list[float] = []
        stores = component(recorder, retry=Backoff(first_s=0.2, max_s=0.5), sleeps=sleeps)
        for batch in (1, 2):
            recorder.gate(batch).set()
            await stores.submit(batch)
        await stores.settled()
        assert sleeps == [0.2, 0.4, 0.5]
        assert [f[2] for f in recorder.failures] == [0.2, 0.4, 0.5] and all(f[0] == 1 for f in recorder.failures)
        assert recorder.log == [("store", 1)] * 4 + [("stored", 1), ("ack", 1), ("store", 2), ("stored", 2), ("ack", 2)]

    asyncio.run(run())


def test_without_retry_a_failed_batch_is_given_up_unacknowledged_and_later_ones_go_on():
    async def run() -> None:
        recorder = Recorder()
        recorder.fail[2] = 1
        stores = component(recorder)
        for batch in (1, 2, 3):
            recorder.gate(batch).set()
            await stores.submit(batch)
        await stores.settled()
        assert recorder.failures == [(2, "store 2 failed", None)]
        assert [b for what, b in recorder.log if what == "ack"] == [1, 3]

    asyncio.run(run())


def test_an_acknowledgement_that_fails_does_not_stop_the_chain():
    async def run() -> list[int]:
        acked: list[int] = []

        async def store(batch: int) -> None:
            return None

        def acknowledge(batch: int) -> None:
            if batch == 1:
                raise RuntimeError("source gone")
            acked.append(batch)

        stores = InOrderStore(store, acknowledge, lambda *args: None, max_in_flight=2)
        for batch in (1, 2):
            await stores.submit(batch)
        await stores.settled()
        return acked

    assert asyncio.run(run()) == [2]


def test_drain_times_out_and_cancel_leaves_the_rest_unacknowledged():
    async def run() -> None:
        recorder = Recorder()
        stores = component(recorder)
        await stores.submit(1)
        await stores.submit(2)
        assert await stores.drain(0.05) is False
        recorder.gate(1).set()
        await asyncio.sleep(0.01)
        stores.cancel()
        await asyncio.sleep(0.01)
        recorder.gate(2).set()
        await asyncio.sleep(0.01)
        assert [b for what, b in recorder.log if what == "ack"] == [1]
        assert stores.in_flight == 0

    asyncio.run(run())


def test_the_bound_must_be_positive():
    with pytest.raises(ValueError):
        InOrderStore(Recorder().store, Recorder().acknowledge, Recorder().failed, max_in_flight=0)
