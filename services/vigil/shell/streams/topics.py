"""Create Vigil's Kafka topics before anyone subscribes (consumers subscribing to a missing
topic wait for the next metadata refresh, which stalls a fresh start).

`vigil.deadletter` keeps refused input for VIGIL_DEADLETTER_RETENTION_DAYS (retention.ms, set
when the topic is created), so what an anonymous client sends cannot fill the cluster's disks."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from vigil.settings import VigilSettings


def deadletter_topic_configs(settings: VigilSettings) -> dict[str, str]:
    """The dead-letter topic's retention: VIGIL_RETAIN_DEAD_LETTERS_DAYS (or its older name
    VIGIL_DEADLETTER_RETENTION_DAYS), in milliseconds; 0 keeps them forever (-1 to Kafka)."""
    days = settings.deadletter_retention_days
    return {"retention.ms": str(int(days * 86_400_000)) if days > 0 else "-1"}


async def ensure_topics(settings: VigilSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.readings_topic, settings.topic_partitions, settings.topic_replication),
            NewTopic(settings.alerts_topic, settings.topic_partitions, settings.topic_replication),
            NewTopic(settings.deadletter_topic, 1, settings.topic_replication,
                     topic_configs=deadletter_topic_configs(settings)),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race
    finally:
        await admin.close()
