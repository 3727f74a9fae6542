"""Every Kafka client Vigil's code makes logs in the one way (shell/streams/kafka_login.py): each
aiokafka producer, consumer and admin client is built with `**kafka_security(settings)`, and the
Faust app with `broker_credentials=faust_credentials(settings)`. A client built without them would
connect anonymously, or fail only against a broker with ACLs; this finds it before that."""

from __future__ import annotations

import ast

from import_graph import REPO, SOURCE_ROOTS

CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
TEST_HELPERS = (REPO / "tests" / "integration", REPO / "deploy" / "local" / "kafka")


def called_name(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else None


def logs_in(call: ast.Call) -> bool:
    """`**kafka_security(...)`, `**login(...)` / `**admin_kafka()` (test helpers built on it), or `**options`
    (an attack test handing a deliberately broken login)."""
    return any(keyword.arg is None for keyword in call.keywords)


def clients_without_login() -> list[str]:
    found = []
    for root in (*SOURCE_ROOTS, *TEST_HELPERS):
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and called_name(node) in CLIENTS and not logs_in(node):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {called_name(node)}")
    return found


def faust_apps_without_credentials() -> list[str]:
    found = []
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and called_name(node) in {"App", "ProcessorApp"}
                        and not any(keyword.arg == "broker_credentials" for keyword in node.keywords)):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {called_name(node)}")
    return found


def test_every_kafka_client_is_built_with_a_login():
    assert clients_without_login() == []


def test_the_faust_app_is_built_with_credentials():
    assert faust_apps_without_credentials() == []
