"""Kafka round trip for deploy/local/smoke: create a topic, produce with acks=all, consume.

Reads VIGIL_KAFKA_BOOTSTRAP; the replication factor follows the broker count (1 or 3).
"""

import asyncio
import logging
import os
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def main() -> int:
    # The first group join always logs a transient GroupCoordinatorNotAvailable; keep output clean.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    bootstrap = os.environ["VIGIL_KAFKA_BOOTSTRAP"]
    replicas = min(3, len(bootstrap.split(",")))
    topic = f"vigil-smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=replicas)])
        # Metadata reaches every broker shortly after the controller commits the topic.
        for _ in range(50):
            if topic in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
        else:
            print(f"topic {topic} never appeared", file=sys.stderr)
            return 1
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"reading-{i}".encode(), key=f"patient-{i % 3}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group", auto_offset_reset="earliest"
    )
    await consumer.start()
    received = 0
    try:
        for _ in range(30):
            batches = await consumer.getmany(timeout_ms=1000)
            received += sum(len(records) for records in batches.values())
            if received >= 10:
                break
        await consumer.commit()
    finally:
        await consumer.stop()
    if received != 10:
        print(f"consumed {received} of 10 records", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
