"""`vigil ingest`: the MQTT -> Kafka gateway.

Devices publish to Mosquitto; gateways share one subscription (`$share/vigil-ingest/...`), so
several of them split the load. Each payload is checked with the same contract as the embedded
mode. Accepted readings go to `vigil.readings` keyed by patient; refusals go to
`vigil.deadletter` with their reason and bytes. The MQTT PUBACK of a message goes out only
after Kafka (idempotent producer, acks=all) has acknowledged everything made from it, so a
gateway crash loses nothing: the broker redelivers to the persistent session. In-flight work
is bounded by the source's buffer and one batch at a time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from aiokafka import AIOKafkaProducer

from vigil.runtimes.shared.health import health_status
from vigil.runtimes.shared.https import HttpTransport
from vigil.runtimes.shared.skeleton import ServiceSkeleton, registry_for, until_signalled
from vigil.shell.contract.feedback import DeviceError, FeedbackLimiter
from vigil.shell.streams.coverage_notes import CoverageNotes
from vigil.shell.streams.records import DeadLetterRecord, ReadingsRecord
from vigil.shell.contract.status import CheckedStatus, check_status_payload
from vigil.shell.contract.validation import (
    CheckedPayload,
    ContractLimits,
    check_vitals_payload,
    internal_error,
)
from vigil.shell.mqtt.message import Message
from vigil.shell.mqtt.client import mqtt_client
from vigil.shell.mqtt.client_ids import service_client_id
from vigil.shell.mqtt.source import MqttSource
from vigil.shell.streams.kafka_login import kafka_security
from vigil.shell.streams.topics import ensure_topics
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.settings import VigilSettings, secret_value

log = logging.getLogger("vigil.ingest")


def gateway_client_id(gateway_id: str | None) -> str:
    """The gateway's MQTT client id (its persistent session's name), always in the services' half of
    the namespace, which no device can be enrolled under: `--id 2` logs in as `vigil-gw-2`, an id
    already starting with `vigil-` (the default `vigil-ingest-HOST`) as itself."""
    return service_client_id(gateway_id or f"vigil-ingest-{socket.gethostname()}")


def retire_gateway(settings: VigilSettings, gateway_id: str | None = None) -> None:
    """Drop a gateway's persistent MQTT session, for a gateway that will not come back.

    While a session exists the broker keeps queueing for it (its share of a shared
    subscription, up to `max_queued_messages`) and writes that queue into every autosave.
    Logging in once with a clean session under the same client id discards it."""
    if not settings.mqtt_url:
        raise ValueError("VIGIL_MQTT_URL is not set: there is no external broker to retire a gateway from")
    client, host, port = mqtt_client(settings.mqtt_url, gateway_client_id(gateway_id), username=settings.mqtt_username,
                                     password=secret_value(settings.mqtt_password), ca_file=settings.mqtt_ca_file, clean_session=True)
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        deadline = time.time() + 10
        while not client.is_connected():
            if time.time() > deadline:
                raise ConnectionError(f"could not log in to {settings.mqtt_url} as {gateway_client_id(gateway_id)}")
            time.sleep(0.02)
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("gateway session retired", extra={"gateway_id": gateway_client_id(gateway_id)})


class Gateway:
    """The gateway's composition root: contract limits, metrics and HTTP from the settings; the
    Kafka producer and the MQTT source once the event loop runs (`start`)."""

    def __init__(self, settings: VigilSettings, registry: Registry, *, gateway_id: str | None = None,
                 http_port: int | None = None, batch_max: int = 1000) -> None:
        self.settings = settings
        self.registry = registry
        self.gateway_id = gateway_client_id(gateway_id)
        self.http_port = settings.http_port if http_port is None else http_port
        self.batch_max = batch_max
        self.metrics = Metrics()
        self.limits = ContractLimits(settings.max_payload_bytes, settings.max_clock_skew_s, settings.max_sample_age_s)
        self.producer: AIOKafkaProducer | None = None
        self.source: MqttSource | None = None
        self.skeleton = ServiceSkeleton(self, host=settings.http_host, port=self.http_port or None,
                                        transport=HttpTransport.from_settings(settings))
        self.stopping = asyncio.Event()
        self.forwarding: asyncio.Task[None] | None = None
        self.forwarded = 0
        self.rejected = 0
        self.feedback = FeedbackLimiter(settings.device_errors_every_s)
        self.last_error: str | None = None

    async def start(self) -> None:
        """Connect to Kafka and the broker, serve HTTP, and start forwarding."""
        await ensure_topics(self.settings, {self.settings.readings_topic, self.settings.deadletter_topic})
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_idempotence=True, acks="all",
            linger_ms=5, max_batch_size=256 * 1024, request_timeout_ms=30000, **kafka_security(self.settings),
        )
        await self.producer.start()
        if not self.settings.mqtt_url:
            raise ValueError("vigil ingest needs VIGIL_MQTT_URL (the broker's service listener)")
        self.source = MqttSource(
            self.settings.mqtt_url, asyncio.get_running_loop(), ack_after_store=True,
            shared_group=self.settings.mqtt_shared_group or "vigil-ingest", client_id=self.gateway_id,
            username=self.settings.mqtt_username, password=secret_value(self.settings.mqtt_password),
            ca_file=self.settings.mqtt_ca_file,
        )
        await asyncio.get_running_loop().run_in_executor(None, self.source.start)
        await self.skeleton.start_http()
        self.forwarding = asyncio.create_task(self.run(), name="forward")
        log.info("gateway started", extra={"gateway_id": self.gateway_id, "mqtt": self.settings.mqtt_url,
                                           "kafka": self.settings.kafka_bootstrap})

    async def run(self) -> None:
        """Forward batch after batch until asked to stop (the batch in hand is finished first)."""
        assert self.source is not None
        while not self.stopping.is_set():
            messages = await self.source.take(self.batch_max, timeout=0.25)
            if messages:
                await self.forward(messages)

    async def forward(self, messages: list) -> None:
        """Check a batch, send it to Kafka, wait for every ack, then PUBACK the batch."""
        assert self.producer is not None and self.source is not None
        settings, producer = self.settings, self.producer
        pending = []
        vitals = readings = 0
        # One Kafka record per device per batch: order within a patient is kept, and the
        # per-record cost downstream (Faust handles each record as an event) is paid once.
        grouped: dict[str, tuple[str, float, list]] = {}
        notes = CoverageNotes(self.registry.patient_for_device)
        tell: list[tuple[str, bytes]] = []  # refusals published back to their devices (issue 13)
        for message in messages:
            if message.topic.endswith("/status"):
                # A status is not forwarded as readings: a spoofed or malformed one is refused, counted
                # and kept like any rejection; an accepted one is a coverage note (the last will's fast path).
                checked = self._check_status(message)
                if not checked.rejections:
                    notes.status(message, self.limits)
            else:
                vitals += 1
                checked = self._check(message)
            for rejection in checked.rejections:
                if not message.topic.endswith("/status"):  # refused samples, as the embedded pipeline counts them
                    notes.refused(rejection)
                error = DeviceError.of(rejection) if self.settings.device_errors else None
                told = self.feedback.admit(error) if error is not None else None
                if told is not None:
                    tell.append(told)
                self.metrics.rejected.labels(str(rejection.reason)).inc()
                self.rejected += 1
                log.info("payload rejected", extra={"reason": str(rejection.reason), "device_id": rejection.device_id,
                                                    "detail": rejection.detail})
                record = DeadLetterRecord.of(rejection, settings.deadletter_max_raw_bytes)
                pending.append(await producer.send(settings.deadletter_topic, record.model_dump_json().encode(),
                                                   key=(rejection.device_id or "unknown").encode()))
            if checked.readings:
                readings += len(checked.readings)
                group = grouped.get(message.topic)
                if group is None:
                    grouped[message.topic] = (message.topic, message.received_at, list(checked.readings))
                else:
                    group[2].extend(checked.readings)
        for topic, received_at, device_readings in grouped.values():
            record = ReadingsRecord.of(device_readings, topic, received_at)
            pending.append(await producer.send(settings.readings_topic, record.to_json(), key=record.patient_id.encode()))
        for record in notes.records(set(grouped)):  # after the readings: a device heard in this batch ends its refusals
            pending.append(await producer.send(settings.readings_topic, record.to_json(), key=record.patient_id.encode()))
        try:
            await asyncio.gather(*pending)
        except Exception as exc:  # the idempotent producer retries internally; this is past that
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("kafka send failed; batch not acknowledged, the broker will redeliver", extra={"error": self.last_error})
            raise
        self.source.acknowledge(messages)
        for topic, payload in tell:
            self.source.client.publish(topic, payload, qos=1, retain=False)
        self.forwarded += readings
        self.metrics.payloads.inc(vitals)
        self.metrics.readings.inc(readings)

    def _check(self, message: Message) -> CheckedPayload:
        """The contract's verdict on one message. If checking itself fails (a bug), the message is
        dead-lettered as `internal_error` with a trace id, logged with the traceback, and the batch
        goes on: nothing was produced from it yet, so there is no state to undo."""
        try:
            return check_vitals_payload(message.topic, message.payload, received_at=message.received_at,
                                        patient_for_device=self.registry.patient_for_device, limits=self.limits)
        except Exception as exc:  # noqa: BLE001 - isolation: one message, never the batch
            rejection = internal_error(message.topic, message.payload, message.received_at, exc, log)
            return CheckedPayload(rejection.device_id, None, rejections=[rejection])

    def _check_status(self, message: Message) -> CheckedPayload:
        """A status message's verdict (`check_status_payload`): only its rejection matters here."""
        try:
            verdict = check_status_payload(message.topic, message.payload, received_at=message.received_at,
                                           patient_for_device=self.registry.patient_for_device, limits=self.limits)
        except Exception as exc:  # noqa: BLE001 - isolation, as in _check
            verdict = CheckedStatus(rejection=internal_error(message.topic, message.payload, message.received_at, exc, log))
        rejection = verdict.rejection
        return CheckedPayload(rejection.device_id if rejection else None, None,
                              rejections=[rejection] if rejection else [])

    def queue_depth(self) -> int:
        return self.source.depth if self.source else 0

    def health(self) -> dict[str, object]:
        connected = bool(self.source and self.source.client.is_connected())
        return {"status": health_status(running=connected, failing=bool(self.last_error)),
                "gateway_id": self.gateway_id, "mqtt_connected": connected,
                "queue_depth": self.queue_depth(),
                "forwarded_readings": self.forwarded, "rejected": self.rejected, "last_error": self.last_error}

    async def stop(self) -> None:
        """Stop gracefully (the skeleton's order: intake, the batch in hand, parts, HTTP)."""
        await self.skeleton.stop()

    async def stop_intake(self) -> None:
        self.stopping.set()

    async def drain_in_flight(self) -> None:
        """Let the batch in hand reach Kafka and be acknowledged (a failed one is redelivered)."""
        if self.forwarding is not None:
            await asyncio.wait([self.forwarding])

    async def close(self) -> None:
        if self.source is not None:
            self.source.stop()
        if self.producer is not None:
            await self.producer.stop()


async def serve_gateway(settings: VigilSettings, gateway_id: str | None = None) -> int:
    """`vigil ingest`: forward until SIGINT or SIGTERM; a forwarding error stops it and is raised."""
    gateway = Gateway(settings, registry_for(settings), gateway_id=gateway_id)
    await gateway.start()
    assert gateway.forwarding is not None
    started = time.time()
    try:
        await until_signalled(gateway.forwarding)
    finally:
        await gateway.stop()
        log.info("gateway stopped", extra={"forwarded": gateway.forwarded, "uptime_s": round(time.time() - started)})
    gateway.forwarding.result()  # the last batch failed while stopping: exit with its error
    return 0
