"""`vigil kafka-topics`: create Vigil's Kafka topics, as the Kafka admin user (a deployment step).

With the brokers' ACLs no service may create topics (docs/security.md, "Kafka"); the operator runs
this once per deployment (and after renaming a topic) with the admin's login, e.g.
VIGIL_KAFKA_USERNAME=vigil-admin VIGIL_KAFKA_PASSWORD_FILE=/run/secrets/kafka-admin vigil kafka-topics."""

from __future__ import annotations

import argparse
import asyncio


def _kafka_topics(args: argparse.Namespace) -> int:
    from vigil.settings import VigilSettings
    from vigil.shell.streams.topics import ensure_topics, vigil_topics

    settings = VigilSettings()
    asyncio.run(ensure_topics(settings))
    for topic in vigil_topics(settings):
        print(f"{topic.name}: {topic.num_partitions} partition(s), replication {topic.replication_factor}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    topics = sub.add_parser("kafka-topics", help="create Vigil's Kafka topics (run as the Kafka admin user: "
                            "VIGIL_KAFKA_USERNAME, VIGIL_KAFKA_PASSWORD_FILE)")
    topics.set_defaults(func=_kafka_topics)
