"""The embedded broker acknowledges a device's QoS 1 publish only once the batch holding it is
durable: PUBACK waits for the store; a failed batch is never acknowledged and its device sends it
again (DUP, on the reconnect the broker causes, without its last will); at shutdown, what is not
stored is not acknowledged and goes to the next process. Real amqtt broker, real paho devices."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.tables import device_status, readings

pytestmark = pytest.mark.slow
ROSTER = Roster.model_validate({"patients": [{"patient_id": "pt-1", "devices": [{"device_id": "wr-1"}]}]})


class Device:
    """A paho device (QoS 1, a last will, reconnecting at once) that records PUBACKs and connects."""

    def __init__(self, port: int, password: str) -> None:
        self.acked: list[int] = []
        self.connects = 0
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-1")
        self.client.username_pw_set("wr-1", password)  # its own login (issue 11)
        self.client.reconnect_delay_set(1, 1)
        self.client.will_set("vigil/v1/devices/wr-1/status", json.dumps({"v": 1, "device_id": "wr-1", "state": "offline"}),
                             qos=1, retain=True)
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.append(mid)
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        self.connects += 1
        self.connected.set()

    def publish(self, seq: int) -> int:
        ts = (datetime.now(timezone.utc) - timedelta(seconds=30) + timedelta(milliseconds=seq)).isoformat()
        payload = json.dumps({"v": 1, "device_id": "wr-1", "samples": [{"ts": ts, "seq": seq, "hr_bpm": 70.0}]})
        return self.client.publish("vigil/v1/devices/wr-1/vitals", payload, qos=1).mid

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_readings(runtime: EmbeddedRuntime) -> int:
    with runtime.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(readings)).scalar_one()


async def until(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def runtime_at(tmp_path, port: int, http_port: int, **settings) -> EmbeddedRuntime:  # noqa: ANN001, ANN003
    return EmbeddedRuntime(VigilSettings(data_dir=tmp_path, mqtt_port=port, http_port=http_port, models_enabled=False,
                                         **settings), Registry(ROSTER))


def gate_stores(runtime: EmbeddedRuntime) -> asyncio.Event:
    """Batches become durable only once the returned event is set (the real write still happens)."""
    gate = asyncio.Event()
    barrier = runtime.writer.barrier

    def gated():  # noqa: ANN202
        written = barrier()

        async def durable() -> None:
            await written
            await gate.wait()
        return asyncio.ensure_future(durable())

    runtime.writer.barrier = gated  # type: ignore[method-assign]
    return gate


async def test_the_puback_waits_until_the_batch_is_durable(tmp_path, free_port, http_port):
    runtime = runtime_at(tmp_path, free_port, http_port)
    await runtime.start()
    gate = gate_stores(runtime)
    device = await asyncio.to_thread(Device, free_port, runtime.credentials.enrol("wr-1"))
    try:
        mid = device.publish(1)
        await until(lambda: runtime.pipeline.totals.readings == 1)
        await asyncio.sleep(0.3)
        assert device.acked == []  # processed, written, not yet durable: no PUBACK
        gate.set()
        await until(lambda: device.acked == [mid])
        assert stored_readings(runtime) == 1
    finally:
        device.close()
        await runtime.stop()


async def test_without_ack_after_store_the_broker_acknowledges_on_receipt(tmp_path, free_port, http_port):
    runtime = runtime_at(tmp_path, free_port, http_port, mqtt_ack_after_store=False)
    await runtime.start()
    gate_stores(runtime)  # never durable
    device = await asyncio.to_thread(Device, free_port, runtime.credentials.enrol("wr-1"))
    try:
        mid = device.publish(1)
        await until(lambda: device.acked == [mid])
    finally:
        device.close()
        await runtime.stop()


@pytest.mark.parametrize("failing", ["decide", "store"])
async def test_a_failed_batch_is_not_acknowledged_and_the_device_sends_it_again(tmp_path, free_port, http_port, failing):
    runtime = runtime_at(tmp_path, free_port, http_port)
    await runtime.start()
    failures = [RuntimeError("disk on fire")]
    if failing == "decide":
        decide = runtime.decide

        def fail_once(messages):  # noqa: ANN001, ANN202
            if failures:
                raise failures.pop()
            return decide(messages)
        runtime.decide = fail_once  # type: ignore[method-assign]
    else:
        barrier = runtime.writer.barrier

        def fail_once():  # noqa: ANN202
            written = barrier()
            if not failures:
                return written

            async def failed() -> None:
                await written
                raise failures.pop()
            return asyncio.ensure_future(failed())
        runtime.writer.barrier = fail_once  # type: ignore[method-assign]
    device = await asyncio.to_thread(Device, free_port, runtime.credentials.enrol("wr-1"))
    try:
        mid = device.publish(1)
        await until(lambda: runtime.last_error is not None)
        assert device.acked == []
        # The broker ended the connection; the device reconnects and sends the message again.
        await until(lambda: device.acked == [mid], timeout=15)
        assert device.connects == 2
        assert stored_readings(runtime) == 1  # once, whether or not the failed batch was written
        with runtime.store.engine.connect() as conn:  # no last will: the device never went silent
            assert conn.execute(select(device_status.c.state)).scalar() is None
    finally:
        device.close()
        await runtime.stop()


async def test_at_shutdown_what_is_not_stored_is_not_acknowledged_and_reaches_the_next_process(
        tmp_path, free_port, http_port):
    first = runtime_at(tmp_path, free_port, http_port)
    await first.start()
    await first.stop_intake()  # received from now on, never processed
    device = await asyncio.to_thread(Device, free_port, first.credentials.enrol("wr-1"))
    try:
        mids = [device.publish(seq) for seq in (1, 2, 3)]
        await until(lambda: first.source.received == 3)
        await first.stop()
        assert device.acked == []
        second = runtime_at(tmp_path, free_port, http_port)
        await second.start()
        try:
            await until(lambda: sorted(device.acked) == sorted(mids), timeout=15)
            assert stored_readings(second) == 3
        finally:
            await second.stop()
    finally:
        device.close()
