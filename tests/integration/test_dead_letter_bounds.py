"""Bounded storage for refused input against the real servers: the dead-letter counts add up in
PostgreSQL as in SQLite, the purge deletes what is past retention, and `vigil.deadletter` is
created with VIGIL_DEADLETTER_RETENTION_DAYS as its retention.ms."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.streams.topics import ensure_topics

pytestmark = pytest.mark.integration

T = 1_760_000_000.0


@pytest.fixture
def postgres_store(servers):
    base = servers.get("VIGIL_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        pytest.skip("PostgreSQL not configured")
    schema = "d" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    store = SqlStore(f"{base}?options=-csearch_path%3D{schema}")
    yield store
    store.close()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_counts_add_up_and_rows_stay_bounded_in_postgresql(postgres_store):
    keeper = DeadLetterKeeper(rate_per_s=0.0, burst=5)
    for batch_no in range(4):
        batch = WriteBatch()
        for i in range(100):
            keeper.add(batch, received_at=T + batch_no * 100 + i, topic="vigil/v1/devices/d-1/vitals",
                       device_id="d-1" if i % 2 else "y" * 200, patient_id=None, reason="malformed_json",
                       detail="x", sample_index=None, raw=b"[" * 100_000, enrolled=bool(i % 2))
        postgres_store.write(batch)
    assert postgres_store.dead_letter_counts() == {("d-1", "malformed_json"): 200, ("", "malformed_json"): 200}
    rows = postgres_store.dead_letters(limit=100)
    assert len(rows) == 10 and all(len(r["raw"]) == 64 * 1024 and r["raw_bytes"] == 100_000 for r in rows)
    assert postgres_store.purge_dead_letters(T + 1000) == (10, 2)


async def test_the_dead_letter_topic_is_created_with_its_retention(servers):
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    run = uuid.uuid4().hex[:8]
    from vigil.shell.streams.kafka_login import kafka_security
    from vigil.tools.stack import KAFKA_ADMIN, kafka_settings

    settings = kafka_settings(KAFKA_ADMIN, kafka_bootstrap=servers["VIGIL_KAFKA_BOOTSTRAP"],
                              readings_topic=f"vigil.readings.{run}", alerts_topic=f"vigil.alerts.{run}",
                              deadletter_topic=f"vigil.deadletter.{run}", deadletter_retention_days=3)
    await ensure_topics(settings)  # topics are created by the Kafka admin
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **kafka_security(settings))
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.deadletter_topic)])
        configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
        assert configs["retention.ms"] == str(3 * 86_400_000)
        await admin.delete_topics([settings.readings_topic, settings.alerts_topic, settings.deadletter_topic])
    finally:
        await admin.close()
