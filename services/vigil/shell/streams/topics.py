"""Create Vigil's Kafka topics before anyone subscribes (consumers subscribing to a missing
topic wait for the next metadata refresh, which stalls a fresh start).

`vigil.deadletter` keeps refused input for VIGIL_DEADLETTER_RETENTION_DAYS (retention.ms, set
when the topic is created), so what an anonymous client sends cannot fill the cluster's disks.

With the brokers' ACLs (docs/security.md, "Kafka") only the Kafka admin may create topics:
`vigil kafka-topics` run as the admin user creates them all; a service only checks that the
topics it uses are there, and says who must create a missing one."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from vigil.settings import VigilSettings
from vigil.shell.streams.kafka_login import kafka_security

TOPIC_ALREADY_EXISTS = 36
NOT_AUTHORIZED = {29: "topic", 31: "cluster"}  # TOPIC_/CLUSTER_AUTHORIZATION_FAILED


class TopicsMissing(RuntimeError):
    """A topic this service needs is missing and its Kafka user may not create it."""


def deadletter_topic_configs(settings: VigilSettings) -> dict[str, str]:
    """The dead-letter topic's retention: VIGIL_RETAIN_DEAD_LETTERS_DAYS (or its older name
    VIGIL_DEADLETTER_RETENTION_DAYS), in milliseconds; 0 keeps them forever (-1 to Kafka)."""
    days = settings.deadletter_retention_days
    return {"retention.ms": str(int(days * 86_400_000)) if days > 0 else "-1"}


def vigil_topics(settings: VigilSettings) -> list[NewTopic]:
    return [
        NewTopic(settings.readings_topic, settings.topic_partitions, settings.topic_replication),
        NewTopic(settings.alerts_topic, settings.topic_partitions, settings.topic_replication),
        NewTopic(settings.deadletter_topic, 1, settings.topic_replication,
                 topic_configs=deadletter_topic_configs(settings)),
    ]


async def ensure_topics(settings: VigilSettings, names: set[str] | None = None) -> None:
    """Create whichever of Vigil's topics (or of `names` among them) is missing. Topics the user
    may not see count as missing; a creation refused for want of rights raises TopicsMissing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **kafka_security(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in vigil_topics(settings)
                   if topic.name not in existing and (names is None or topic.name in names)]
        if not missing:
            return
        response = await admin.create_topics(missing)
        refused = [name for name, code, *_ in response.topic_errors if code in NOT_AUTHORIZED]
        failed = [(name, code) for name, code, *_ in response.topic_errors
                  if code not in (0, TOPIC_ALREADY_EXISTS) and code not in NOT_AUTHORIZED]
        if refused:
            raise TopicsMissing(f"Kafka topic(s) {', '.join(refused)} missing, or outside Kafka user "
                                f"{settings.kafka_username!r}'s rights, and that user may not create topics: run "
                                "`vigil kafka-topics` as the Kafka admin user first (docs/deployment.md), and check "
                                "the topic names against the ACLs (docs/security.md, \"Kafka\")")
        if failed:
            raise RuntimeError(f"Kafka refused to create topics: {failed}")
    finally:
        await admin.close()
