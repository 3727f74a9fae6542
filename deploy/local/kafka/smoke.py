"""Kafka round trip for deploy/local/smoke: create a topic, produce with acks=all, consume, over
SASL_SSL as the admin user; then a wrong password must be refused.

Reads VIGIL_KAFKA_BOOTSTRAP, VIGIL_KAFKA_CA_FILE and the admin's password in
VIGIL_KAFKA_CREDENTIALS_DIR/vigil-admin; the replication factor follows the broker count (1 or 3).
"""

import asyncio
import logging
import os
import ssl
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError


def login(password: str | None = None) -> dict:
    """SASL_SSL as vigil-admin (or with another password), trusting only the local CA."""
    if password is None:
        with open(os.path.join(os.environ["VIGIL_KAFKA_CREDENTIALS_DIR"], "vigil-admin"), encoding="utf-8") as f:
            password = f.read().strip()
    return {"security_protocol": "SASL_SSL", "ssl_context": ssl.create_default_context(cafile=os.environ["VIGIL_KAFKA_CA_FILE"]),
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "vigil-admin", "sasl_plain_password": password}


async def wrong_password_refused(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login("not-the-password"))
    try:
        await admin.start()
    except KafkaError:
        return True
    finally:
        await admin.close()
    return False


async def main() -> int:
    # The first group join always logs a transient GroupCoordinatorNotAvailable; keep output clean.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    bootstrap = os.environ["VIGIL_KAFKA_BOOTSTRAP"]
    replicas = min(3, len(bootstrap.split(",")))
    topic = f"vigil-smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login())
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

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **login())
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"reading-{i}".encode(), key=f"patient-{i % 3}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group", auto_offset_reset="earliest", **login()
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
    if not await wrong_password_refused(bootstrap):
        print("a wrong password was let in", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
