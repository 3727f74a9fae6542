"""Each Vigil service's rights on the real Kafka (deploy/local: SASL_SSL, SCRAM-SHA-512, ACLs).

A matrix of service x resource x action, tried for real as each service's own user: describe, read,
write and create on each of Vigil's topics and on the processor's own (Faust) topics, and joining
each consumer group. Every cell is compared with what docs/security.md ("Kafka") promises, and the
whole matrix is printed (`service | resource | action | expected | got`). Then the attacks: no
login, a wrong password, plain text to the TLS listener, and a broker whose certificate comes from
another CA.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (GroupAuthorizationFailedError, KafkaConnectionError, KafkaError,
                             TopicAuthorizationFailedError)

from vigil.shell.streams.kafka_login import kafka_security
from vigil.tools.stack import KAFKA_ADMIN, kafka_settings

pytestmark = pytest.mark.integration

GRANTED, REFUSED = "granted", "refused"
TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED = 29, 31
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def kafka(servers) -> dict[str, str]:
    if servers.get("VIGIL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL") != "SASL_SSL" or not servers.get("VIGIL_KAFKA_CREDENTIALS_DIR"):
        pytest.fail("deploy/local's Kafka must run SASL_SSL with per-service users (VIGIL_KAFKA_CREDENTIALS_DIR)")
    return servers


def login(user: str) -> dict:
    return kafka_security(kafka_settings(user))


# -- one action, tried as one user: "granted" or "refused" (anything else fails the test) -----------

async def describe(bootstrap: str, user: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login(user))
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {0: GRANTED, TOPIC_AUTHORIZATION_FAILED: REFUSED}[found["error_code"]]


async def write(bootstrap: str, user: str, topic: str) -> str:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=TIMEOUT_S * 1000, **login(user))
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"rights-probe", key=b"probe")
        return GRANTED
    except TopicAuthorizationFailedError:
        return REFUSED
    finally:
        await producer.stop()


async def read(bootstrap: str, user: str, topic: str) -> str:
    """Fetch partition 0 from the start, with no consumer group: the probe record, or a refusal."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                **login(user))
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        for _ in range(TIMEOUT_S):
            batch = await consumer.getmany(partition, timeout_ms=1000)
            if batch.get(partition):
                return GRANTED
            if topic in consumer._client.cluster.unauthorized_topics:
                return REFUSED  # not even Describe: the broker will not say where the partition is
        raise AssertionError(f"{user} neither read nor was refused {topic}")
    except TopicAuthorizationFailedError:
        return REFUSED
    finally:
        await consumer.stop()


async def create(bootstrap: str, user: str, topic: str) -> str:
    """Create a new topic under the resource's name (`<topic>.probe`), deleted again at once."""
    name = f"{topic}.probe-{uuid.uuid4().hex[:4]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login(user))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    ((_, code, *_),) = response.topic_errors
    if code == 0:
        await as_admin(bootstrap, lambda admin: admin.delete_topics([name]))
        return GRANTED
    assert code in (TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED), f"create {name}: error {code}"
    return REFUSED


async def join(bootstrap: str, user: str, group: str, topic: str) -> str:
    """Join `group` (subscribed to `topic`): assigned a partition, or refused the group."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", **login(user))
    try:
        await consumer.start()
        for _ in range(TIMEOUT_S * 2):
            if consumer.assignment():
                return GRANTED
            try:
                await consumer.getmany(timeout_ms=500)
            except TopicAuthorizationFailedError:
                pass  # this user may not read the topic: the group still answers
        raise AssertionError(f"{user} neither joined nor was refused group {group}")
    except GroupAuthorizationFailedError:
        return REFUSED
    finally:
        await consumer.stop()


async def as_admin(bootstrap: str, act) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **login(KAFKA_ADMIN))
    await admin.start()
    try:
        await act(admin)
    finally:
        await admin.close()


# -- the promise (docs/security.md, "Kafka") ----------------------------------------------------------

SERVICES = {"gateway": "vigil-gateway", "processor": "vigil-processor", "notifier": "vigil-notifier"}
TOPIC_RIGHTS = {  # resource -> service -> actions granted; every other action is refused
    "vigil.readings": {"gateway": {"describe", "write"}, "processor": {"describe", "read"}},
    "vigil.alerts": {"processor": {"describe", "write"}, "notifier": {"describe", "read"}},
    "vigil.deadletter": {"gateway": {"describe", "write"}, "processor": {"describe", "write"}},
    "processor changelog": {"processor": {"describe", "read", "write", "create"}},
}
GROUP_RIGHTS = {"group vigil-processor": {"processor"}, "group vigil-notifier": {"notifier"}}
# A join probe subscribes to a topic the service may describe, so that only the group is judged.
SUBSCRIBES = {"gateway": "vigil.readings", "processor": "vigil.readings", "notifier": "vigil.alerts"}


def print_matrix(rows: list[tuple[str, str, str, str, str]]) -> None:
    header = ("service", "resource", "action", "expected", "got")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def test_each_service_has_only_its_own_rights(kafka, caplog):
    caplog.set_level(logging.CRITICAL, logger="aiokafka")  # each refusal is also logged, hundreds of times
    bootstrap, run = kafka["VIGIL_KAFKA_BOOTSTRAP"], "r" + uuid.uuid4().hex[:8]
    app_id = f"vigil-processor-{run}"
    topics = {"vigil.readings": f"vigil.readings.{run}", "vigil.alerts": f"vigil.alerts.{run}",
              "vigil.deadletter": f"vigil.deadletter.{run}",
              "processor changelog": f"{app_id}-patient-state-changelog"}
    groups = {"group vigil-processor": app_id, "group vigil-notifier": f"vigil-notifier-{run}"}

    async def setup() -> None:
        await as_admin(bootstrap, lambda admin: admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **login(KAFKA_ADMIN))
        await producer.start()
        try:
            for topic in topics.values():  # one record each, for the read probes
                await producer.send_and_wait(topic, b"probe", key=b"probe")
        finally:
            await producer.stop()

    async def matrix() -> list[tuple[str, str, str, str, str]]:
        rows = []
        for service, user in SERVICES.items():
            for resource, topic in topics.items():
                granted = TOPIC_RIGHTS[resource].get(service, set())
                for action, probe in (("describe", describe), ("read", read), ("write", write), ("create", create)):
                    got = await probe(bootstrap, user, topic)
                    rows.append((service, f"topic {resource}", action, GRANTED if action in granted else REFUSED, got))
            for resource, group in groups.items():
                got = await join(bootstrap, user, group, topics[SUBSCRIBES[service]])
                rows.append((service, resource, "join", GRANTED if service in GROUP_RIGHTS[resource] else REFUSED, got))
        return rows

    asyncio.run(setup())
    try:
        rows = asyncio.run(matrix())
    finally:
        asyncio.run(as_admin(bootstrap, lambda admin: admin.delete_topics(list(topics.values()))))
    print()
    print_matrix(rows)
    wrong = [row for row in rows if row[3] != row[4]]
    assert not wrong, f"rights not as promised: {wrong}"
    assert {row[4] for row in rows} == {GRANTED, REFUSED}


# -- attacks --------------------------------------------------------------------------------------------

async def try_admin(bootstrap: str, **options) -> None:
    """Log in and list topics; raises what the client met."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **options)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def test_the_same_client_with_the_right_login_gets_in(kafka):
    """The control for the refusals below: each differs from this in one thing only."""
    asyncio.run(try_admin(kafka["VIGIL_KAFKA_BOOTSTRAP"], **login("vigil-gateway")))


def test_a_client_without_a_login_is_refused(kafka, caplog):
    """TLS with the right CA, but no SASL login: the broker closes the connection."""
    no_login = {"security_protocol": "SSL", "ssl_context": login("vigil-gateway")["ssl_context"]}
    with pytest.raises(KafkaConnectionError):
        asyncio.run(try_admin(kafka["VIGIL_KAFKA_BOOTSTRAP"], **no_login))
    assert "closed" in caplog.text


def test_a_wrong_password_is_refused(kafka, caplog):
    options = {**login("vigil-gateway"), "sasl_plain_password": "not-the-gateways-password"}
    with pytest.raises(KafkaError):
        asyncio.run(try_admin(kafka["VIGIL_KAFKA_BOOTSTRAP"], **options))
    assert "SaslAuthenticationFailed" in caplog.text


def test_another_services_password_is_refused(kafka, caplog):
    """The notifier's password does not log the gateway in (one user, one password)."""
    notifier_password = login("vigil-notifier")["sasl_plain_password"]
    options = {**login("vigil-gateway"), "sasl_plain_password": notifier_password}
    with pytest.raises(KafkaError):
        asyncio.run(try_admin(kafka["VIGIL_KAFKA_BOOTSTRAP"], **options))
    assert "SaslAuthenticationFailed" in caplog.text


def test_plain_text_to_the_tls_listener_is_refused(kafka):
    """A client speaking plain Kafka (no TLS, no login), and one with a login but no TLS."""
    bootstrap = kafka["VIGIL_KAFKA_BOOTSTRAP"]
    with pytest.raises(KafkaConnectionError):
        asyncio.run(try_admin(bootstrap, security_protocol="PLAINTEXT"))
    options = {**login("vigil-gateway"), "security_protocol": "SASL_PLAINTEXT"}
    options.pop("ssl_context")
    with pytest.raises(KafkaError):
        asyncio.run(try_admin(bootstrap, **options))


def other_ca(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA that is not the local one, and a server certificate for 127.0.0.1 it signed (an
    impostor broker's): the CA's certificate, the server's certificate and key."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Not Vigil CA",
            "-keyout", "other-ca.key", "-out", "other-ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "impostor.key", "-out", "impostor.csr")
    (tmp / "impostor.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "impostor.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "impostor.ext", "-out", "impostor.crt")
    return tmp / "other-ca.crt", tmp / "impostor.crt", tmp / "impostor.key"


def test_a_client_trusting_another_ca_does_not_reach_the_broker(kafka, tmp_path):
    ca, _, _ = other_ca(tmp_path)
    options = {**login("vigil-gateway"), "ssl_context": ssl.create_default_context(cafile=str(ca))}
    with pytest.raises(KafkaConnectionError):
        asyncio.run(try_admin(kafka["VIGIL_KAFKA_BOOTSTRAP"], **options))


def test_a_broker_with_a_certificate_from_another_ca_gets_no_password(kafka, tmp_path):
    """An impostor broker on 127.0.0.1 with a certificate another CA signed: Vigil's client (its
    real settings, trusting only VIGIL_KAFKA_CA_FILE) breaks off in the TLS handshake, so not one
    byte of Kafka protocol (the SASL login with its password) reaches the impostor."""
    from vigil.tools.ports import free_port

    _, cert, key = other_ca(tmp_path)
    received: list[bytes] = []

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await reader.read(4096))
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    async def attempt() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        port = free_port()
        server = await asyncio.start_server(impostor, "127.0.0.1", port, ssl=context)
        try:
            settings = kafka_settings("vigil-gateway", kafka_bootstrap=f"127.0.0.1:{port}")
            await try_admin(settings.kafka_bootstrap, **kafka_security(settings))
        finally:
            server.close()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(attempt())
    assert not any(received), f"the impostor received {received!r}"
