"""The embedded MQTT broker (amqtt), in this process's event loop, on loopback.

The embedded runtime reads device messages straight from its own broker (`BrokerTap`) instead
of subscribing to it over TCP: the broker and the processor share one process and one event
loop, so a loopback subscriber only added per-message work (encode, send, PUBACK, decode in a
paho thread, hand back to the loop). Other MQTT clients still connect, publish and subscribe
as usual; an external broker (`VIGIL_MQTT_URL`) is read through paho (mqtt_source.MqttSource).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from amqtt.broker import Broker

from vigil.settings import VigilSettings
from vigil.shell.contract.topics import PREFIX
from vigil.shell.contract.validation import RejectReason
from vigil.shell.mqtt.buffer import MessageBuffer
from vigil.shell.mqtt.message import Message
from vigil.shell.observability.metrics import Metrics

log = logging.getLogger("vigil.broker")


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _device_topic(topic: str | None) -> bool:
    """vigil/v1/devices/<id>/vitals or …/status, the topics the processor reads."""
    return bool(topic) and topic.startswith(PREFIX + "/") and (topic.endswith("/vitals") or topic.endswith("/status")) \
        and topic.count("/") == 4


def _status_topic(topic: str) -> bool:
    """vigil/v1/devices/<id>/status: the one retained topic Vigil serves."""
    return topic.endswith("/status") and _device_topic(topic)


class BrokerGuard:
    """What the embedded broker keeps for anonymous clients, bounded, and what it refuses, counted.

    Retained messages are kept only on device status topics, at most `max_retained` of them and
    `max_retained_bytes` in all (a new status for a topic already retained replaces it); every
    refusal counts on `vigil_broker_retained_refused_total{reason}`. Publishes on topics Vigil
    does not serve count as `vigil_rejected_total{reason="unknown_topic"}` (still routed to their
    subscribers: the broker is a broker)."""

    def __init__(self, metrics: Metrics, *, max_retained: int = 20_000, max_retained_bytes: int = 8 * 1024 * 1024) -> None:
        self.metrics = metrics
        self.max_retained = max_retained
        self.max_retained_bytes = max_retained_bytes
        self.sizes: dict[str, int] = {}  # retained topic -> its payload's bytes
        self.bytes = 0
        self.refused = 0
        self.unknown_topics = 0

    @classmethod
    def from_settings(cls, settings: VigilSettings, metrics: Metrics) -> BrokerGuard:
        return cls(metrics, max_retained=settings.broker_retained_max, max_retained_bytes=settings.broker_retained_max_bytes)

    def may_retain(self, topic: str, size: int) -> bool:
        """Whether to keep this retained publish (a non-empty one: clearing is always allowed)."""
        if not _status_topic(topic):
            return self._refuse("topic", topic)
        old = self.sizes.get(topic)
        if old is None and len(self.sizes) >= self.max_retained:
            return self._refuse("count", topic)
        if self.bytes - (old or 0) + size > self.max_retained_bytes:
            return self._refuse("bytes", topic)
        return True

    def retained(self, topic: str, size: int) -> None:
        """The broker now holds `size` bytes retained on `topic` (0: cleared)."""
        self.bytes -= self.sizes.pop(topic, 0)
        if size:
            self.sizes[topic] = size
            self.bytes += size
        self.metrics.broker_retained.set(len(self.sizes))
        self.metrics.broker_retained_bytes.set(self.bytes)

    def _refuse(self, reason: str, topic: str) -> bool:
        self.refused += 1
        self.metrics.broker_retained_refused.labels(reason).inc()
        if self.refused == 1 or self.refused % 1000 == 0:  # a flood is one line per thousand; the metric has all
            log.warning("retained message refused", extra={"reason": reason, "topic": topic[:128],
                                                           "refused_so_far": self.refused})
        return False

    def published(self, topic: str | None) -> None:
        """Count a publish (or last will) on a topic Vigil does not serve."""
        if topic is not None and not _device_topic(topic):
            self.unknown_topics += 1
            self.metrics.rejected.labels(str(RejectReason.UNKNOWN_TOPIC)).inc()
            if self.unknown_topics == 1 or self.unknown_topics % 1000 == 0:
                log.info("publish on a topic Vigil does not serve", extra={"topic": topic[:128],
                                                                          "unknown_so_far": self.unknown_topics})


class GuardedBroker(Broker):
    """amqtt's Broker with a BrokerGuard on retained messages and unknown topics (amqtt < 0.13:
    `retain_message` takes every retained publish and retained last will; `_broadcast_message`
    every routed publish and last will)."""

    def __init__(self, config: dict[str, Any], guard: BrokerGuard | None = None) -> None:
        super().__init__(config)
        self.guard = guard

    async def retain_message(self, source_session: Any, topic_name: str | None, data: Any, qos: int | None = None) -> None:
        guard = self.guard
        if guard is not None and data and topic_name is not None and not guard.may_retain(topic_name, len(data)):
            return
        await super().retain_message(source_session, topic_name, data, qos)
        if guard is not None and topic_name is not None:
            guard.retained(topic_name, len(data) if data else 0)

    async def _broadcast_message(self, session: Any, topic: str | None, data: Any, force_qos: int | None = None) -> None:
        if self.guard is not None:
            self.guard.published(topic)
        await super()._broadcast_message(session, topic, data, force_qos)


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


class TappedBroker(GuardedBroker):
    """amqtt's Broker, handing every routed device message to a BrokerTap as well.

    `_broadcast_message` is where amqtt routes both client publishes (after its topic checks)
    and last-will messages; amqtt is pinned (< 0.13) and tests/e2e cover this hook."""

    def __init__(self, config: dict[str, Any], tap: BrokerTap | None = None, guard: BrokerGuard | None = None) -> None:
        super().__init__(config, guard)
        self.tap = tap

    async def _broadcast_message(self, session: Any, topic: str | None, data: Any, force_qos: int | None = None) -> None:
        tap = self.tap
        if tap is not None and tap.running and data is not None and _device_topic(topic):
            await tap.offer(topic, bytes(data))
        await super()._broadcast_message(session, topic, data, force_qos)


async def start_broker(host: str = "127.0.0.1", port: int = 1883, tap: BrokerTap | None = None,
                       guard: BrokerGuard | None = None) -> Broker:
    """Start an anonymous broker; other MQTT clients may publish to it while it runs."""
    broker = TappedBroker(broker_config(host, port), tap, guard)
    await broker.start()
    return broker
