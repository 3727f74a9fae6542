"""The baselines the scaled bench measures Vigil against (tools/bench/scaled.py).

- `plain_consumer`: a plain aiokafka consumer that reads and parses every readings record.
- `plain_pipeline_consumer`: the same consumer running Vigil's Pipeline and InfluxDB writes,
  without Faust: the gap to a worker is what Faust's own machinery costs.
- `bare_subscriber_main`: a bare paho subscriber (QoS 1), in a process of its own as the
  gateway is: `python -m vigil.tools.bench.baselines bare PORT USERNAME PASSWORD EXPECTED`.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from vigil.settings import VigilSettings
from vigil.shell.streams.records import ReadingsRecord


async def plain_consumer(settings: VigilSettings, topic: str, total: int) -> float:
    """The baseline: a plain aiokafka consumer reading and parsing every record."""
    from aiokafka import AIOKafkaConsumer

    from vigil.shell.streams.kafka_login import kafka_security

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"plain-{uuid.uuid4().hex[:6]}", enable_auto_commit=False,
                                **kafka_security(settings))
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for messages in batch.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    ReadingsRecord.model_validate_json(message.value)
                    seen += 1
        return seen / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


async def plain_pipeline_consumer(settings: VigilSettings, topic: str, roster: dict, total_readings: int) -> float:
    """Faust's work without Faust: a plain aiokafka consumer running the same Pipeline and
    writing the same InfluxDB series (state in memory, no changelog): what Faust's own
    machinery costs is the gap between this and a worker."""
    from aiokafka import AIOKafkaConsumer

    from vigil.shell.pipeline.pipeline import Message, Pipeline
    from vigil.shell.observability.metrics import Metrics
    from vigil.shell.stores.influx import InfluxSeriesWriter
    from vigil.shell.registry import Registry, Roster
    from vigil.shell.stores.sql import SqlStore

    store = SqlStore(settings.database_url or settings.sqlite_url())
    pipeline = Pipeline(Registry(Roster.model_validate(roster)), Metrics(), store)
    influx = InfluxSeriesWriter(settings.influx_url, settings.influx_token, settings.influx_org, settings.influx_bucket)
    from vigil.shell.streams.kafka_login import kafka_security

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"plain-pipeline-{uuid.uuid4().hex[:6]}", enable_auto_commit=False,
                                **kafka_security(settings))
    await consumer.start()
    try:
        started = None
        while pipeline.totals.readings < total_readings:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            records = [ReadingsRecord.model_validate_json(m.value) for messages in batch.values() for m in messages]
            if not records:
                continue
            started = started or time.perf_counter()
            decision = pipeline.process_readings([(r.to_readings(), Message(r.topic, b"", r.received_at))
                                                  for r in records])
            await influx.write(decision.batch.readings)
            await consumer.commit()
        return total_readings / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        influx.close()
        store.close()


def bare_subscriber_main(port: int, username: str, password: str, expected: int) -> None:
    """Count QoS 1 messages and print the time the last one arrived (the baseline)."""
    done = threading.Event()
    count = [0]

    def on_message(client, userdata, msg):
        count[0] += 1
        if count[0] >= expected:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vigil-bench-bare-{uuid.uuid4().hex[:6]}")
    if username:
        client.username_pw_set(username, password)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("vigil/v1/devices/+/vitals", qos=1)
    client.loop_start()
    time.sleep(0.5)
    print("subscribed", flush=True)
    done.wait(600)
    print(time.time(), flush=True)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "bare":
    bare_subscriber_main(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
