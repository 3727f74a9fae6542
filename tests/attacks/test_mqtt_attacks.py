"""The MQTT half of the attacker suite, against both runtimes: the embedded broker (`vigil run`, in
process) and Mosquitto as deploy/local configures it (`integration`: a private instance built by the
same script, with the password file `vigil device export-mosquitto` writes).

Every attack is recorded with `record_attack` (tests/attacks/conftest.py) and asserted refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from mqtt_attacker import Client, make_ca, status, vitals
from sqlalchemy import func, select

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.tables import alerts, dead_letters, device_status, readings

pytestmark = pytest.mark.slow
EMBEDDED = "embedded"
ROSTER = {"patients": [{"patient_id": "victim", "devices": [{"device_id": "wr-victim"}]},
                       {"patient_id": "intruder", "devices": [{"device_id": "wr-intruder"}]}]}
VICTIM, INTRUDER = "wr-victim", "wr-intruder"


def topic(device: str, leaf: str) -> str:
    return f"vigil/v1/devices/{device}/{leaf}"


@contextlib.asynccontextmanager
async def embedded(tmp_path, port: int, http_port: int, **settings: object):
    """`vigil run`'s runtime, with both devices enrolled; yields (runtime, {device: password})."""
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, mqtt_port=port, http_port=http_port,
                                            models_enabled=False, **settings), Registry(Roster.model_validate(ROSTER)))
    await runtime.start()
    try:
        yield runtime, {device: runtime.credentials.enrol(device) for device in (VICTIM, INTRUDER)}
    finally:
        await runtime.stop()


def count(runtime: EmbeddedRuntime, table, *where) -> int:  # noqa: ANN001
    with runtime.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


async def until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def connects(port: int, client_id: str, username: str | None, password: str | None, **options: object) -> bool:
    client = Client(port, client_id, username, password, **options)
    accepted = await asyncio.to_thread(client.connect)
    await asyncio.to_thread(client.close)
    return accepted


async def test_logins_embedded(tmp_path, free_port, http_port, record_attack):
    async with embedded(tmp_path, free_port, http_port) as (runtime, passwords):
        attempts = {
            "anonymous connect": (None, None),
            "wrong password": (VICTIM, passwords[VICTIM] + "x"),
            "another device's password": (VICTIM, passwords[INTRUDER]),
            "unknown device": ("wr-nobody", passwords[VICTIM]),
            "empty password": (VICTIM, ""),
        }
        for attack, (username, password) in attempts.items():
            accepted = await connects(free_port, f"c-{attack[:8]}", username, password)
            record_attack("mqtt", attack, EMBEDDED, not accepted)
            assert not accepted, attack
        runtime.credentials.revoke(INTRUDER)
        accepted = await connects(free_port, "c-revoked", INTRUDER, passwords[INTRUDER])
        record_attack("mqtt", "revoked device", EMBEDDED, not accepted)
        assert not accepted
        assert await connects(free_port, "c-victim", VICTIM, passwords[VICTIM])  # the control: the right login works
        assert runtime.health()["mqtt"]["authentication"] == "device credentials"
        assert runtime.metrics.mqtt_refused.labels("bad_credentials")._value.get() >= 4


async def test_publishing_on_another_devices_topic_stores_nothing_and_raises_nothing(tmp_path, free_port, http_port,
                                                                                    record_attack):
    async with embedded(tmp_path, free_port, http_port) as (runtime, passwords):
        intruder = Client(free_port, INTRUDER, INTRUDER, passwords[INTRUDER])
        assert await asyncio.to_thread(intruder.connect)
        await asyncio.to_thread(intruder.publish, topic(VICTIM, "vitals"), vitals(VICTIM))
        await asyncio.to_thread(intruder.publish, topic(VICTIM, "status"), status(VICTIM, "offline"), retain=True)
        await asyncio.to_thread(intruder.publish, topic(INTRUDER, "status"), status(INTRUDER))  # ours: the sync point
        await until(lambda: count(runtime, device_status, device_status.c.device_id == INTRUDER) == 1)
        await runtime.drain(5)
        stored = count(runtime, readings, readings.c.patient_id == "victim")
        raised = count(runtime, alerts, alerts.c.patient_id == "victim")
        victim_status = count(runtime, device_status, device_status.c.device_id == VICTIM)
        refused = stored == 0 and raised == 0 and victim_status == 0 and runtime.source.received == 1
        record_attack("mqtt", "publish vitals on another device's topic", EMBEDDED, refused)
        record_attack("mqtt", "retained status on another device's topic", EMBEDDED, victim_status == 0)
        assert refused, (stored, raised, victim_status, runtime.source.received)
        await asyncio.to_thread(intruder.close)
        # The control: the same batch from its own device is stored (the attack's payload was a real one).
        victim = Client(free_port, VICTIM, VICTIM, passwords[VICTIM])
        assert await asyncio.to_thread(victim.connect)
        await asyncio.to_thread(victim.publish, topic(VICTIM, "vitals"), vitals(VICTIM))
        await until(lambda: count(runtime, readings, readings.c.patient_id == "victim") == 12)
        await asyncio.to_thread(victim.close)


async def test_subscribing_to_other_devices_data_receives_nothing(tmp_path, free_port, http_port, record_attack):
    async with embedded(tmp_path, free_port, http_port) as (runtime, passwords):
        intruder = Client(free_port, INTRUDER, INTRUDER, passwords[INTRUDER])
        assert await asyncio.to_thread(intruder.connect)
        filters = {"subscribe to #": "#", "subscribe to every device's vitals": "vigil/v1/devices/+/vitals",
                   "subscribe to another device's errors": topic(VICTIM, "errors"),
                   "subscribe to another device's vitals": topic(VICTIM, "vitals"),
                   "subscribe to $SYS": "$SYS/#"}
        granted = {attack: await asyncio.to_thread(intruder.subscribe, wanted) for attack, wanted in filters.items()}
        own = await asyncio.to_thread(intruder.subscribe, topic(INTRUDER, "errors"))
        victim = Client(free_port, VICTIM, VICTIM, passwords[VICTIM])
        assert await asyncio.to_thread(victim.connect)
        await asyncio.to_thread(victim.publish, topic(VICTIM, "vitals"), vitals(VICTIM))
        await asyncio.to_thread(victim.publish, topic(VICTIM, "status"), status(VICTIM), retain=True)
        await until(lambda: count(runtime, readings) == 12)
        await asyncio.sleep(0.5)
        for attack, codes in granted.items():
            refused = codes == [0x80] and not intruder.received
            record_attack("mqtt", attack, EMBEDDED, refused)
            assert refused, (attack, codes, intruder.received)
        assert own == [1]  # its own errors topic is allowed
        for client in (intruder, victim):
            await asyncio.to_thread(client.close)


async def test_status_spoofing(tmp_path, free_port, http_port, record_attack):
    async with embedded(tmp_path, free_port, http_port) as (runtime, passwords):
        intruder = Client(free_port, INTRUDER, INTRUDER, passwords[INTRUDER])
        assert await asyncio.to_thread(intruder.connect)
        # Its own topic, someone else's id in the payload: a kept, counted rejection.
        await asyncio.to_thread(intruder.publish, topic(INTRUDER, "status"), status(VICTIM, "offline"), retain=True)
        await until(lambda: count(runtime, dead_letters, dead_letters.c.reason == "topic_mismatch") == 1)
        spoofed = count(runtime, device_status, device_status.c.device_id == VICTIM)
        record_attack("mqtt", "status with another device's id in the payload", EMBEDDED, spoofed == 0)
        assert spoofed == 0
        await asyncio.to_thread(intruder.close)
        # A last will on the victim's status topic: the CONNECT is refused.
        accepted = await connects(free_port, "c-will", INTRUDER, passwords[INTRUDER],
                                  will=(topic(VICTIM, "status"), status(VICTIM, "offline")))
        record_attack("mqtt", "last will on another device's status topic", EMBEDDED, not accepted)
        assert not accepted


async def test_taking_over_another_devices_session(tmp_path, free_port, http_port, record_attack):
    async with embedded(tmp_path, free_port, http_port) as (runtime, passwords):
        victim = Client(free_port, VICTIM, VICTIM, passwords[VICTIM])
        assert await asyncio.to_thread(victim.connect)
        for attack, (username, password) in {"take over a session by client id, anonymous": (None, None),
                                             "take over a session by client id, another device": (
                                                 INTRUDER, passwords[INTRUDER])}.items():
            accepted = await connects(free_port, VICTIM, username, password)  # the victim's client id
            refused = not accepted and victim.client.is_connected()
            record_attack("mqtt", attack, EMBEDDED, refused)
            assert refused, attack
        await asyncio.to_thread(victim.close)


async def test_tls_listener(tmp_path, free_port, http_port, record_attack):
    from vigil.tools.ports import free_port as another_port

    ca, cert, key = make_ca(tmp_path)
    tls_port = another_port()
    async with embedded(tmp_path, free_port, http_port, mqtt_tls_cert=cert, mqtt_tls_key=key,
                        mqtt_tls_port=tls_port, mqtt_plain_listener=False) as (runtime, passwords):
        assert await connects(tls_port, "c-tls", VICTIM, passwords[VICTIM], host="localhost", ca_file=ca)
        other = tmp_path / "other"
        other.mkdir()
        assert not await connects(tls_port, "c-other-ca", VICTIM, passwords[VICTIM], host="localhost",
                                  ca_file=make_ca(other)[0])  # the device checks whom it talks to
        plain = await connects(tls_port, "c-plain", VICTIM, passwords[VICTIM])
        no_plain_listener = await connects(free_port, "c-plain2", VICTIM, passwords[VICTIM])
        anonymous = await connects(tls_port, "c-anon", None, None, host="localhost", ca_file=ca)
        record_attack("mqtt", "plain MQTT to the TLS listener", EMBEDDED, not plain)
        record_attack("mqtt", "plain MQTT with TLS only configured", EMBEDDED, not no_plain_listener)
        record_attack("mqtt", "anonymous connect over TLS", EMBEDDED, not anonymous)
        assert not plain and not no_plain_listener and not anonymous
