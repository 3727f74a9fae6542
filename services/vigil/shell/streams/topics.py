"""Create Vigil's Kafka topics before anyone subscribes (consumers subscribing to a missing
topic wait for the next metadata refresh, which stalls a fresh start)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from vigil.settings import VigilSettings


async def ensure_topics(settings: VigilSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.readings_topic, settings.topic_partitions, settings.topic_replication),
            NewTopic(settings.alerts_topic, settings.topic_partitions, settings.topic_replication),
            NewTopic(settings.deadletter_topic, 1, settings.topic_replication),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race
    finally:
        await admin.close()
