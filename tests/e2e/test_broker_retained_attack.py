"""Attack on the embedded broker's memory (issue 12): 1,000 retained 60 KB messages on arbitrary
topics were kept for the life of the process (66 MB), uncounted. Now they are refused and
counted, device statuses are still retained within their caps, and publishes on topics Vigil
does not serve are counted as unknown_topic."""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as mqtt
import pytest

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry

pytestmark = pytest.mark.slow


def sample(runtime: EmbeddedRuntime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_attack_a_thousand_retained_60_kb_messages_are_refused_counted_and_cost_no_memory(
        tmp_path, free_port, http_port):
    settings = VigilSettings(data_dir=tmp_path, mqtt_port=free_port, http_port=http_port, models_enabled=False,
                             broker_retained_max=5, broker_retained_max_bytes=64 * 1024,
                             # The caps hold even in the development mode, where anyone may publish anywhere;
                             # by default this client cannot even connect (tests/attacks/test_mqtt_attacks.py).
                             mqtt_allow_anonymous=True)
    runtime = EmbeddedRuntime(settings, Registry())
    await runtime.start()
    try:
        def attacker() -> None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anonymous-attacker")
            client.connect("127.0.0.1", free_port)
            client.loop_start()
            blob = b"z" * 60_000
            infos = [client.publish(f"junk/{i}", blob, qos=1, retain=True) for i in range(1000)]
            infos += [client.publish(f"vigil/v1/devices/d-{i}/status", json.dumps({"device_id": f"d-{i}",
                                                                                    "state": "online"}),
                                     qos=1, retain=True) for i in range(8)]  # 5 fit the count cap
            infos.append(client.publish("vigil/v1/devices/d-0/status", b"s" * 70_000, qos=1, retain=True))  # bytes cap
            infos += [client.publish("chat/room", b"hello", qos=1) for _ in range(10)]  # not retained, not ours
            for info in infos:
                info.wait_for_publish(30)
            client.loop_stop()
            client.disconnect()

        await asyncio.to_thread(attacker)
        await asyncio.sleep(0.3)
        retained = runtime.broker.retained_messages
        assert sorted(retained) == [f"vigil/v1/devices/d-{i}/status" for i in range(5)]
        assert sum(len(m.data) for m in retained.values()) < 1024  # was 60 MB
        assert sample(runtime, "vigil_broker_retained_refused_total", reason="topic") == 1000
        assert sample(runtime, "vigil_broker_retained_refused_total", reason="count") == 3
        assert sample(runtime, "vigil_broker_retained_refused_total", reason="bytes") == 1
        assert sample(runtime, "vigil_rejected_total", reason="unknown_topic") == 1010  # the junk and the chat
        assert sample(runtime, "vigil_broker_retained_messages") == 5
        # The device statuses reached the processor as before.
        await runtime.drain(5)
        assert runtime.source.received == 9
    finally:
        await runtime.stop()
