"""The embedded MQTT broker (amqtt), in this process's event loop, on loopback.

The embedded runtime reads device messages straight from its own broker (`BrokerTap`) instead
of subscribing to it over TCP: the broker and the processor share one process and one event
loop, so a loopback subscriber only added per-message work (encode, send, PUBACK, decode in a
paho thread, hand back to the loop). Other MQTT clients still connect, publish and subscribe
as usual; an external broker (`VIGIL_MQTT_URL`) is read through paho (mqtt_source.MqttSource).

Acknowledged only once stored: the PUBACK of a device's QoS 1 publish is held until the batch
holding it is durable (`BrokerTap.acknowledge`); a batch that fails is never acknowledged, and its
publishers are disconnected (without their last will) so that they send it again, DUP, at once.
amqtt acknowledges on receipt; `TappedBroker` replaces its inbound QoS 1 flow on each client's
handler (`_hold_pubacks`), which amqtt 0.12's source makes safe (tests/e2e/test_ack_after_store.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import INCOMING

from vigil.runtimes.embedded.access import AuthenticatingBroker, BrokerAccess
from vigil.settings import VigilSettings
from vigil.shell.contract.topics import PREFIX
from vigil.shell.contract.validation import RejectReason
from vigil.shell.mqtt.buffer import MessageBuffer
from vigil.shell.mqtt.message import Message
from vigil.shell.observability.metrics import Metrics

log = logging.getLogger("vigil.broker")


@dataclass(frozen=True, slots=True)
class TlsListener:
    """The embedded broker's TLS listener (VIGIL_MQTT_TLS_CERT, VIGIL_MQTT_TLS_KEY, VIGIL_MQTT_TLS_PORT)."""

    port: int
    certfile: str
    keyfile: str


def broker_config(host: str, port: int | None, tls: TlsListener | None = None) -> dict[str, object]:
    """Listeners: plain on `port` (None: none), TLS when configured. Who may connect, and which
    topics each client may use, is `BrokerAccess` (runtimes/embedded/access.py), not amqtt's plugins."""
    # amqtt starts its "default" listener too (and binds it to 0.0.0.0:1883 when it names no
    # address), so the first listener Vigil wants *is* the default: nothing else ever listens.
    listeners: dict[str, object] = {}
    if port is not None:
        listeners["default"] = {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}
    if tls is not None:
        listeners["tls" if listeners else "default"] = {
            "type": "tcp", "bind": f"{host}:{tls.port}", "max_connections": 10000, "ssl": True,
            "certfile": tls.certfile, "keyfile": tls.keyfile}
    if not listeners:
        raise ValueError("the embedded broker needs a plain or a TLS listener")
    return {"listeners": listeners, "plugins": {}}


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


class GuardedBroker(AuthenticatingBroker):
    """amqtt's Broker with BrokerAccess (who connects, which topics) and a BrokerGuard on retained
    messages and unknown topics (amqtt < 0.13: `retain_message` takes every retained publish and
    retained last will; `_broadcast_message` every routed publish and last will)."""

    def __init__(self, config: dict[str, Any], guard: BrokerGuard | None = None, *, access: BrokerAccess) -> None:
        super().__init__(config, access)
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


@dataclass(slots=True, eq=False)
class HeldPuback:
    """The PUBACK a publisher is owed for one QoS 1 publish, held until its batch is durable."""

    handler: BrokerProtocolHandler
    packet_id: int
    taken: bool = False  # handed to the processor with its message

    async def send(self) -> None:
        if _connected(self.handler):
            await self.handler._send_packet(PubackPacket.build(self.packet_id))


@dataclass(slots=True)
class TappedMessage(Message):
    """A device message from the tap, with the PUBACK its publisher is owed (None for QoS 0, last
    wills, or when PUBACKs are not held)."""

    puback: HeldPuback | None = None


# The PUBACK owed for the publish that amqtt is routing in this task (its client's message loop).
_routing: ContextVar[HeldPuback | None] = ContextVar("vigil_routing_puback", default=None)


def _connected(handler: BrokerProtocolHandler) -> bool:
    """Whether this publisher's connection is still open (if it is gone, the publisher sends its
    unacknowledged messages again when it reconnects: no PUBACK for the old connection)."""
    reading = handler._reader_task
    return handler.writer is not None and handler.session is not None and reading is not None and not reading.done()


async def _send_pubacks(pubacks: list[HeldPuback]) -> None:
    """A stored batch's PUBACKs, in order: per connection in one write, under amqtt's write lock
    (the bytes amqtt's `_send_packet` writes one packet and one syscall at a time)."""
    owed: dict[int, tuple[BrokerProtocolHandler, list[int]]] = {}
    for puback in pubacks:
        owed.setdefault(id(puback.handler), (puback.handler, []))[1].append(puback.packet_id)
    for handler, packet_ids in owed.values():
        if not _connected(handler):
            continue
        data = b"".join(PubackPacket.build(packet_id).to_bytes() for packet_id in packet_ids)
        try:
            async with handler._write_lock:
                handler.writer.write(data)  # type: ignore[union-attr]
                await handler.writer.drain()  # type: ignore[union-attr]
        except Exception:  # one closed connection does not hold back the others' PUBACKs
            log.debug("PUBACKs not sent", exc_info=True)


class BrokerTap(MessageBuffer):
    """Device messages as the broker routes them (publishes that passed its topic checks, and
    last wills), buffered for the processor with the same interface as MqttSource.

    The buffer is bounded: when it is full the broker's handling of that publisher waits, so
    a publisher faster than the processor is slowed down (TCP backpressure), not buffered forever.
    With `hold_pubacks` (VIGIL_MQTT_ACK_AFTER_STORE, on by default) a device's QoS 1 publish is
    acknowledged only once its batch is durable, so what this buffer loses with the process was
    never acknowledged, and its publisher sends it again (docs/architecture.md)."""

    def __init__(self, max_buffered: int = 20000, *, hold_pubacks: bool = True) -> None:
        super().__init__(max_buffered)
        self.room = asyncio.Event()
        self.room.set()
        self.running = True  # from the broker's first message: a device may publish before we score
        self.hold_pubacks = hold_pubacks
        self._sending: set[asyncio.Task[None]] = set()

    async def offer(self, topic: str, data: bytes, puback: HeldPuback | None = None) -> None:
        while len(self.buffer) >= self.max_buffered:
            self.room.clear()
            await self.room.wait()
        was_empty = not self.buffer
        self.buffer.append(TappedMessage(topic, data, time.time(), puback.packet_id if puback else 0, puback))
        if puback is not None:
            puback.taken = True
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

    # -- acknowledgements: only once stored ------------------------------------------------------

    def acknowledge(self, messages: list[Message]) -> None:
        """Their batch is durable: send the PUBACKs held for them, in order."""
        owed = [m.puback for m in messages if isinstance(m, TappedMessage) and m.puback is not None]
        if owed:
            self._in_background(_send_pubacks(owed))

    def not_stored(self, messages: list[Message]) -> None:
        """Their batch failed: no PUBACK. End each publisher's connection as if it had sent
        DISCONNECT (no last will: the device did not go silent), so that it reconnects and sends
        its unacknowledged messages again, DUP, instead of holding them until some later reconnect."""
        publishers = {id(m.puback.handler): m.puback.handler
                      for m in messages if isinstance(m, TappedMessage) and m.puback is not None}
        for handler in publishers.values():
            self._in_background(handler.handle_disconnect(DisconnectPacket()))

    async def acknowledged(self) -> None:
        """Wait until the PUBACKs of every batch acknowledged so far are written."""
        if self._sending:
            await asyncio.wait(set(self._sending))

    def _in_background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


class TappedBroker(GuardedBroker):
    """amqtt's Broker, handing every routed device message to a BrokerTap as well.

    `_broadcast_message` is where amqtt routes both client publishes (after its topic checks)
    and last-will messages; amqtt is pinned (< 0.13) and tests/e2e cover this hook."""

    def __init__(self, config: dict[str, Any], tap: BrokerTap | None = None, guard: BrokerGuard | None = None, *,
                 access: BrokerAccess) -> None:
        super().__init__(config, guard, access=access)
        self.tap = tap

    async def _broadcast_message(self, session: Any, topic: str | None, data: Any, force_qos: int | None = None) -> None:
        tap = self.tap
        if tap is not None and tap.running and data is not None and _device_topic(topic):
            await tap.offer(topic, bytes(data), _routing.get())
        await super()._broadcast_message(session, topic, data, force_qos)

    # -- QoS 1 from devices: PUBACK once stored ---------------------------------------------------

    def _holds(self, app_message: Any) -> bool:
        """Whether amqtt must not PUBACK this publish on receipt: a device's QoS 1 publish, with a
        tap that holds PUBACKs until the batch is durable."""
        tap = self.tap
        return (tap is not None and tap.hold_pubacks and app_message.direction == INCOMING
                and app_message.qos == 1 and _device_topic(app_message.topic))

    async def _handle_client_session(self, reader: Any, writer: Any, client_session: Any,
                                     handler: BrokerProtocolHandler, *args: Any) -> None:
        self._hold_pubacks(handler)
        await super()._handle_client_session(reader, writer, client_session, handler, *args)

    def _hold_pubacks(self, handler: BrokerProtocolHandler) -> None:
        """Replace amqtt's inbound QoS 1 flow on this client's handler: a held publish is handed to
        the broker's routing as amqtt does (its session's delivery queue), without the PUBACK."""
        amqtt_flow = handler._handle_qos1_message_flow

        async def qos1_flow(app_message: Any) -> None:
            if not self._holds(app_message) or handler.session is None or app_message.packet_id is None:
                await amqtt_flow(app_message)
                return
            await handler.session.delivered_message_queue.put(app_message)

        handler._handle_qos1_message_flow = qos1_flow  # type: ignore[method-assign]

    async def _handle_message_delivery(self, client_session: Any, handler: BrokerProtocolHandler,
                                       wait_deliver: asyncio.Future[Any]) -> bool:
        """Route a publish; a held one carries its PUBACK to the tap (`_routing`)."""
        app_message = wait_deliver.result()
        if app_message is None or not self._holds(app_message):
            return await super()._handle_message_delivery(client_session, handler, wait_deliver)
        puback = HeldPuback(handler, app_message.packet_id)
        token = _routing.set(puback)
        try:
            routed = await super()._handle_message_delivery(client_session, handler, wait_deliver)
        finally:
            _routing.reset(token)
        if routed and not puback.taken and self.tap is not None and self.tap.running:
            await puback.send()  # refused by amqtt's topic checks: acknowledged, as amqtt does
        # Not taken while stopping: never acknowledged; the publisher sends it to the next process.
        return routed


async def start_broker(host: str = "127.0.0.1", port: int | None = 1883, tap: BrokerTap | None = None,
                       guard: BrokerGuard | None = None, *, access: BrokerAccess,
                       tls: TlsListener | None = None) -> Broker:
    """Start the broker; MQTT clients that `access` lets in may publish to it while it runs
    (anonymous ones only with `BrokerAccess.anonymous_for_development()`)."""
    broker = TappedBroker(broker_config(host, port, tls), tap, guard, access=access)
    await broker.start()
    return broker
