"""The embedded MQTT broker (amqtt), in this process's event loop, on loopback.

The embedded runtime reads device messages straight from its own broker (`BrokerTap`) instead
of subscribing to it over TCP: the broker and the processor share one process and one event
loop, so a loopback subscriber only added per-message work (encode, send, PUBACK, decode in a
paho thread, hand back to the loop). Other MQTT clients still connect, publish and subscribe
as usual; an external broker (`VIGIL_MQTT_URL`) is read through paho (mqtt_source.MqttSource).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from amqtt.broker import Broker

from vigil.shell.contract.topics import PREFIX
from vigil.shell.mqtt.buffer import MessageBuffer
from vigil.shell.mqtt.message import Message


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _device_topic(topic: str | None) -> bool:
    """vigil/v1/devices/<id>/vitals or …/status, the topics the processor reads."""
    return bool(topic) and topic.startswith(PREFIX + "/") and (topic.endswith("/vitals") or topic.endswith("/status")) \
        and topic.count("/") == 4


class BrokerTap(MessageBuffer):
    """Device messages as the broker routes them (publishes that passed its topic checks, and
    last wills), buffered for the processor with the same interface as MqttSource.

    The buffer is bounded: when it is full the broker's handling of that publisher waits, so
    a publisher faster than the processor is slowed down (TCP backpressure), not buffered forever.
    Messages are acknowledged to publishers by the broker on receipt, as with any amqtt
    subscriber; what is in this buffer dies with the process (docs/architecture.md)."""

    def __init__(self, max_buffered: int = 20000) -> None:
        super().__init__(max_buffered)
        self.room = asyncio.Event()
        self.room.set()
        self.running = True  # from the broker's first message: a device may publish before we score

    async def offer(self, topic: str, data: bytes) -> None:
        while len(self.buffer) >= self.max_buffered:
            self.room.clear()
            await self.room.wait()
        was_empty = not self.buffer
        self.buffer.append(Message(topic, data, time.time()))
        self.received += 1
        if was_empty:
            self.ready.set()

    # -- the MqttSource interface ---------------------------------------------------------------

    def start(self) -> None:
        """Already buffering since the broker started."""

    def stop(self) -> None:
        self.running = False

    def is_connected(self) -> bool:
        return self.running

    def _taken(self) -> None:
        if len(self.buffer) < self.max_buffered:
            self.room.set()

    def acknowledge(self, messages: list[Message]) -> None:
        """Nothing to do: the broker acknowledged each publish on receipt."""


class TappedBroker(Broker):
    """amqtt's Broker, handing every routed device message to a BrokerTap as well.

    `_broadcast_message` is where amqtt routes both client publishes (after its topic checks)
    and last-will messages; amqtt is pinned (< 0.13) and tests/e2e cover this hook."""

    def __init__(self, config: dict[str, Any], tap: BrokerTap | None = None) -> None:
        super().__init__(config)
        self.tap = tap

    async def _broadcast_message(self, session: Any, topic: str | None, data: Any, force_qos: int | None = None) -> None:
        tap = self.tap
        if tap is not None and tap.running and data is not None and _device_topic(topic):
            await tap.offer(topic, bytes(data))
        await super()._broadcast_message(session, topic, data, force_qos)


async def start_broker(host: str = "127.0.0.1", port: int = 1883, tap: BrokerTap | None = None) -> Broker:
    """Start an anonymous broker; other MQTT clients may publish to it while it runs."""
    broker = TappedBroker(broker_config(host, port), tap)
    await broker.start()
    return broker
