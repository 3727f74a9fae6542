"""The embedded runtime reads its own broker in-process: device publishes and last wills reach
the processor, other topics do not, and a full buffer slows the publisher instead of growing."""

from __future__ import annotations

import asyncio
import json
import socket

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from vigil.runtimes.embedded.broker import BrokerTap
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.shell.registry import Registry, Roster
from vigil.settings import VigilSettings
from vigil.shell.stores.tables import dead_letters, device_status

pytestmark = pytest.mark.slow


async def test_a_full_tap_holds_the_publisher_until_the_processor_takes():
    tap = BrokerTap(max_buffered=2)
    await tap.offer("vigil/v1/devices/d1/vitals", b"1")
    await tap.offer("vigil/v1/devices/d1/vitals", b"2")
    third = asyncio.ensure_future(tap.offer("vigil/v1/devices/d1/vitals", b"3"))
    await asyncio.sleep(0.05)
    assert not third.done() and tap.depth == 2  # held, not buffered
    assert [m.payload for m in await tap.take(10, timeout=0.1)] == [b"1", b"2"]
    await asyncio.wait_for(third, 1)
    assert [m.payload for m in await tap.take(10, timeout=0.1)] == [b"3"]
    assert tap.received == 3


async def test_device_messages_and_last_wills_reach_the_processor(tmp_path, free_port, http_port):
    roster = Roster.model_validate({"patients": [{"patient_id": "pt-1", "devices": [{"device_id": "wr-1"}]}]})
    settings = VigilSettings(data_dir=tmp_path, mqtt_port=free_port, http_port=http_port, models_enabled=False)
    runtime = EmbeddedRuntime(settings, Registry(roster))
    await runtime.start()
    password = runtime.credentials.enrol("wr-1")
    try:
        def device() -> None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-1")
            client.username_pw_set("wr-1", password)
            client.will_set("vigil/v1/devices/wr-1/status", json.dumps({"device_id": "wr-1", "state": "offline"}),
                            qos=1, retain=True)
            client.connect("127.0.0.1", free_port)
            client.loop_start()
            client.publish("vigil/v1/devices/wr-1/status", json.dumps({"device_id": "wr-1", "state": "online"}),
                           qos=1, retain=True).wait_for_publish(5)
            client.publish("elsewhere/chat", b"not for vigil", qos=1).wait_for_publish(5)
            client.loop_stop()
            client.socket().shutdown(socket.SHUT_RDWR)  # vanish without DISCONNECT: the broker sends the will
            client.socket().close()

        await asyncio.to_thread(device)

        def state() -> str | None:
            with runtime.store.engine.connect() as conn:
                return conn.execute(select(device_status.c.state).where(device_status.c.device_id == "wr-1")).scalar()

        for _ in range(100):
            if state() == "offline":
                break
            await asyncio.sleep(0.05)
        assert state() == "offline"
        assert runtime.source.received == 2  # online, then the will; the other topic is not ours
        with runtime.store.engine.connect() as conn:
            assert conn.execute(select(dead_letters)).first() is None
        assert runtime.health()["mqtt"]["connected"] is True
    finally:
        await runtime.stop()
