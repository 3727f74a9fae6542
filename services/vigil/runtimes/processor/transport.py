"""Faust's Kafka transport, with a shorter fetch long-poll and a commit that never skips a record.

Faust's aiokafka driver hard-codes `fetch_max_wait_ms=1500`. aiokafka sends one fetch request
per broker at a time, and leaves out partitions that still hold records the worker has not
taken yet. So when a request goes out while the readings partitions are being drained, it holds
only idle partitions (the group leader's `__assignor-__leader` topic is always idle) and the
broker keeps it for the whole 1.5 s; meanwhile the drained readings partitions cannot be fetched
again. On the leader worker every reading then waited ~1.7 s in Kafka (measured with
LagSensor). A short long-poll bounds that wait.

Commits: Faust commits a partition's first run of consecutive acknowledged offsets. Its guard
against a hole at the head (`Consumer._new_offset`: `min(acked) - committed > 1`) is one short:
the committed offset is the *next* record to process, so with that record unacknowledged and the
one after it acknowledged, Faust commits past it, and after a crash or rebalance that record is
never read again (at-most-once for it). `never_past_unacked` refuses that commit: the offset moves
only over a run that starts at the committed offset (or at an offset Faust knows it will never
deliver, a gap)."""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


def transport_with_fetch_wait(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by AIOKafkaConsumer.start()
            return consumer

    class Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

        def _new_offset(self, tp: Any) -> int | None:
            if not never_past_unacked(self._acked[tp], self._committed_offset[tp], self._gap[tp]):
                return None
            return super()._new_offset(tp)

    class Transport(faust_aiokafka.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport


def never_past_unacked(acked: list[int], committed: int | None, gaps: Any) -> bool:
    """May Faust work out a new commit from `acked`? Not while the record at the committed offset
    (the next to process) is neither acknowledged nor a known gap."""
    if not acked or committed is None:
        return True
    return min(acked) <= committed or bool(gaps.at(committed))
