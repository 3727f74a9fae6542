"""Faust's Kafka transport for the worker: a shorter fetch long-poll, and the worker's consumer.

Faust's aiokafka driver hard-codes `fetch_max_wait_ms=1500`. aiokafka sends one fetch request
per broker at a time, and leaves out partitions that still hold records the worker has not
taken yet. So when a request goes out while the readings partitions are being drained, it holds
only idle partitions (the group leader's `__assignor-__leader` topic is always idle) and the
broker keeps it for the whole 1.5 s; meanwhile the drained readings partitions cannot be fetched
again. On the leader worker every reading then waited ~1.7 s in Kafka (measured with
LagSensor). A short long-poll bounds that wait.

The worker's consumer (worker_consumer.WorkerConsumer) never commits past an unacknowledged
record and delivers each partition's records in sequence around rebalances."""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from vigil.runtimes.processor.worker_consumer import WorkerConsumer


def transport_with_fetch_wait(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by AIOKafkaConsumer.start()
            return consumer

    class Consumer(WorkerConsumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport
