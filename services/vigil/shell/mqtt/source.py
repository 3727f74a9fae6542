"""Receive device messages with paho-mqtt and hand them to the asyncio processor.

Backpressure: the buffer between paho's network thread and the processor is bounded. When it
is full, paho's thread waits, stops reading the socket, and the broker holds further messages
(QoS 1 in flight): memory stays bounded and nothing is dropped. With `ack_after_store`, the
PUBACK for a message goes out only after the batch holding it is committed to the store, so a
crash between receipt and storage makes the broker redeliver instead of losing the reading.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from vigil.shell.contract.topics import STATUS_TOPIC_FILTER, VITALS_TOPIC_FILTER
from vigil.shell.mqtt.buffer import MessageBuffer
from vigil.shell.mqtt.client import mqtt_client
from vigil.shell.mqtt.message import Message


class MqttSource(MessageBuffer):
    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        *,
        max_buffered: int = 20000,
        ack_after_store: bool = True,
        shared_group: str | None = None,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        super().__init__(max_buffered)
        self.loop = loop
        self.ack_after_store = ack_after_store
        self.connected = threading.Event()
        prefix = f"$share/{shared_group}/" if shared_group else ""
        self.filters = [(prefix + VITALS_TOPIC_FILTER, 1), (prefix + STATUS_TOPIC_FILTER, 1)]
        self.client, self.host, self.port = mqtt_client(
            url, client_id or f"vigil-ingest-{uuid.uuid4().hex[:8]}", username=username, password=password,
            ca_file=ca_file, clean_session=False if client_id else True, manual_ack=ack_after_store,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise ConnectionError(f"could not subscribe at mqtt://{self.host}:{self.port} within 10 s")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def is_connected(self) -> bool:
        return self.client.is_connected()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(self.filters)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reason_codes: object, props: object) -> None:
        # Ready only once the broker has the subscription: until then it drops what devices publish.
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        while len(self.buffer) >= self.max_buffered:
            time.sleep(0.005)  # backpressure: stop reading until the processor catches up
        was_empty = not self.buffer
        self.buffer.append(Message(msg.topic, msg.payload, time.time(), msg.mid if msg.qos else 0))
        self.received += 1
        if was_empty:
            self.loop.call_soon_threadsafe(self.ready.set)

    def acknowledge(self, messages: list[Message]) -> None:
        """Send PUBACKs for messages whose batch has been stored."""
        if not self.ack_after_store:
            return
        for message in messages:
            if message.mid:
                self.client.ack(message.mid, 1)

