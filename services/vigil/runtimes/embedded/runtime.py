"""The embedded runtime: broker, ingest, processor, store and HTTP in one asyncio process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from functools import partial

from amqtt.broker import Broker

from vigil.runtimes.shared.alerting import AlertingService, cancel_tasks
from vigil.runtimes.shared.health import health_status
from vigil.runtimes.shared.skeleton import ServiceSkeleton
from vigil.shell.contract.feedback import FeedbackLimiter
from vigil.shell.contract.validation import ContractLimits
from vigil.core.quality import QualityLimits
from vigil.core.reading import Reading
from vigil.runtimes.embedded.access import BrokerAccess
from vigil.runtimes.shared.https import HttpTransport
from vigil.runtimes.embedded.broker import BrokerTap, BrokerGuard, TlsListener, start_broker
from vigil.shell.identity.devices import DeviceCredentials
from vigil.web.operator_api import add_operator_routes
from vigil.shell.mqtt.source import MqttSource
from vigil.shell.pipeline.coverage_report import CoverageReport
from vigil.shell.pipeline.in_order import InOrderStore
from vigil.shell.pipeline.patients import PatientBook, monitor_factory
from vigil.shell.pipeline.pipeline import AnnouncedAlert, Decision, Message, Pipeline
from vigil.shell.notify.channels.base import Channel
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.settings import VigilSettings, is_loopback, secret_value
from vigil.shell.stores.tables import readings
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.holder import hold_store
from vigil.shell.stores.writer import BackgroundWriter
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.private_files import private_dir
from vigil.shell.stores.retention import Purger
from vigil.runtimes.embedded.retention import RetentionPurge
from vigil.shell.trends.sql_trends import SqlTrends
from vigil.web.ward_source import verdicts_as_coverage

log = logging.getLogger("vigil.runtime")
REBUILD_WINDOW_S = 12 * 3600.0
BATCH_YIELD_MAX_S = 0.1
MAX_UNSTORED_BATCHES = 4  # processed and waiting to become durable: bounded, so memory is too


def notifies(batch: WriteBatch) -> bool:
    """Whether a stored batch gives the outbox dispatcher something new to look at."""
    return bool(batch.outbox or batch.incidents)


@dataclass(slots=True)
class Unstored:
    """A processed batch on its way to the writer thread: its messages wait for it to be durable."""

    durable: asyncio.Future[None]
    messages: list[Message]
    ring: bool  # it queued notifications: ring the dispatcher once it is stored


async def _durable(unstored: Unstored) -> None:
    await unstored.durable


class EmbeddedRuntime:
    """The embedded runtime's composition root: every part is built here, from the settings."""

    def __init__(
        self,
        settings: VigilSettings,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.time,
        announce: Callable[[AnnouncedAlert], None] | None = None,
        batch_max: int = 500,
        channels: dict[str, Channel] | None = None,
    ) -> None:
        from vigil.shell.scoring.loading import model_stage_for  # numpy and onnxruntime: only once a runtime is built

        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.metrics = Metrics()
        self.announce = announce
        settings.check_transport()  # a signed webhook with patient data: https, or http to loopback
        private_dir(settings.data_dir)  # owner-only, tightened if looser (data at rest)
        # Held while the runtime lives: `vigil restore` refuses to replace a store in use.
        self.holder = hold_store(settings.sqlite_url())
        # The access audit's retention is enforced by the database's own trigger (migrate.append_only).
        self.store = SqlStore(settings.sqlite_url(), audit_keep_days=settings.retain_audit_days)
        # Batches are stored on one writer thread, in order, while the loop scores the next one.
        self.writer = BackgroundWriter(self.store)
        self.retention = RetentionPurge(settings, self.writer, Purger(self.store.engine, settings.purge_chunk_rows),
                                        self.metrics, clock)
        # Incidents, notifications and explanations, in the same SQLite file and transactions.
        # Its other writes (outbox deliveries, explanations) run on the same thread: one writer per file.
        self.alerting = AlertingService(settings, registry, self.store.engine, self.writer.write_and_wait, self.metrics,
                                        clock=clock, channels=channels, lane=self.writer.run)
        # Rules alone, with the reason on /healthz, when the models are off or do not load.
        stage, self.models_status = model_stage_for(settings.models_enabled, settings.model_dir)
        limits = ContractLimits(settings.max_payload_bytes, settings.max_clock_skew_s, settings.max_sample_age_s)
        quality = QualityLimits(stale_after_s=settings.device_silent_after_s)
        self.patients = PatientBook(monitor_factory(registry, quality, settings.coverage_limits()), self.metrics.patients.set)
        # Known alert ids come from the store itself: an alert raised in a batch still queued on the
        # writer thread is open in the core's memory, so the core cannot raise it again.
        self.pipeline = Pipeline(registry, self.metrics, self.store, patients=self.patients, model_stage=stage,
                         emergency_number=settings.emergency_number,
                                 limits=limits, quality=quality,
                                 dead_letters=DeadLetterKeeper.from_settings(settings))
        # Processed batches waiting to become durable before their messages are acknowledged
        # (a failed write is not retried: the desk is restored and the broker redelivers).
        # One more than MAX_UNSTORED_BATCHES: that many wait while one is being stored.
        self.unstored: InOrderStore[Unstored] = InOrderStore(
            _durable, self._stored, self._store_failed, max_in_flight=MAX_UNSTORED_BATCHES + 1)
        self.batch_max = batch_max
        # Devices log in to the embedded broker with the credentials `vigil device enrol` gave them.
        self.credentials = DeviceCredentials(self.store.engine, registry)
        self.access: BrokerAccess | None = None
        self.broker = None
        self.source: MqttSource | BrokerTap | None = None
        self.skeleton = ServiceSkeleton(self, host=settings.http_host, port=settings.http_port,
                                        routes=(partial(add_operator_routes, view=self), self.alerting.add_routes),
                                        transport=HttpTransport.from_settings(settings))
        self.coverage = CoverageReport(self.metrics)
        # The ward workspace: trends from this store's rollups, each patient's live coverage verdict.
        self.alerting.ward.trends = SqlTrends(self.store.engine)
        self.alerting.ward.coverage_of = self.coverage_of
        self.feedback = FeedbackLimiter(settings.device_errors_every_s)
        self.pipeline.tell_devices = settings.device_errors
        if clock is not time.time:  # `vigil demo`: receipt times onto its simulated clock (coverage)
            self.pipeline.receipt_clock = lambda wall: wall + (clock() - time.time())
        self._feedback_tasks: set[asyncio.Task[None]] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.started_at = time.time()
        self.processed_batches = 0
        self.processed_messages = 0
        self.last_error: str | None = None

    def coverage_of(self, patient_ids: list[str], now: float) -> dict[str, dict[str, Any]]:
        """The coverage verdict of each patient this runtime has heard of (the ward workspace asks)."""
        monitors = {monitor.patient_id: monitor for monitor in self.patients.in_memory()}
        wanted = set(patient_ids)
        return verdicts_as_coverage({p: m.verdict(now) for p, m in monitors.items() if p in wanted}, now)

    @property
    def mqtt_url(self) -> str:
        return self.settings.mqtt_url or f"mqtt://{self.settings.mqtt_host}:{self.settings.mqtt_port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.settings.mqtt_url is None:
            # Our own broker: read what it routes in-process rather than subscribing over TCP.
            tap = BrokerTap(hold_pubacks=self.settings.ack_after_store())
            self.access = BrokerAccess(self.credentials, allow_anonymous=self.settings.mqtt_allow_anonymous,
                                       metrics=self.metrics)
            self.broker = await start_broker(self.settings.mqtt_host, self._plain_port(), tap,
                                             guard=BrokerGuard.from_settings(self.settings, self.metrics),
                                             access=self.access, tls=self._tls())
            self.source = tap
            self._warn_if_plain_beyond_loopback()
        rebuilt = self.rebuild_state()
        if rebuilt:
            log.info("state rebuilt from store", extra={"readings": rebuilt, "patients": len(self.patients)})
        self.alerting.start()
        if self.source is None:
            self.source = MqttSource(
                self.mqtt_url, loop, ack_after_store=self.settings.ack_after_store(),
                shared_group=self.settings.mqtt_shared_group,
                username=self.settings.mqtt_username, password=secret_value(self.settings.mqtt_password),
                ca_file=self.settings.mqtt_ca_file,
            )
            await loop.run_in_executor(None, self.source.start)
        await self.skeleton.start_http()
        self.tasks = [asyncio.create_task(self._process_forever()), asyncio.create_task(self._tick_forever()),
                      asyncio.create_task(self.retention.run_forever())]

    def _warn_if_plain_beyond_loopback(self) -> None:
        """The plain listener (the development default) bound beyond this machine: said loudly, at start."""
        settings = self.settings
        if settings.mqtt_plain_listener and not is_loopback(settings.mqtt_host):
            log.warning("DEVICE TRAFFIC UNENCRYPTED: the embedded broker's plain MQTT listener is reachable beyond this "
                        "machine; devices' secrets and vitals travel in clear. Set VIGIL_MQTT_TLS_CERT and "
                        "VIGIL_MQTT_TLS_KEY and VIGIL_MQTT_PLAIN_LISTENER=false",
                        extra={"host": settings.mqtt_host, "port": settings.mqtt_port,
                               "tls_port": settings.mqtt_tls_port if self._tls() else None})

    def _tls(self) -> TlsListener | None:
        settings = self.settings
        if settings.mqtt_tls_cert is None and settings.mqtt_tls_key is None:
            return None
        if settings.mqtt_tls_cert is None or settings.mqtt_tls_key is None:
            raise ValueError("VIGIL_MQTT_TLS_CERT and VIGIL_MQTT_TLS_KEY go together")
        return TlsListener(settings.mqtt_tls_port, str(settings.mqtt_tls_cert), str(settings.mqtt_tls_key))

    def _plain_port(self) -> int | None:
        if self.settings.mqtt_plain_listener:
            return self.settings.mqtt_port
        if self._tls() is None:
            raise ValueError("VIGIL_MQTT_PLAIN_LISTENER=false needs a TLS listener (VIGIL_MQTT_TLS_CERT, VIGIL_MQTT_TLS_KEY)")
        return None

    def rebuild_state(self) -> int:
        """Replay recent stored readings through the core, quietly, so that timers and open
        alerts are exactly as before a restart (alert ids are stable, so nothing repeats)."""
        since = self.clock() - REBUILD_WINDOW_S
        columns = [c.name for c in readings.columns if c.name not in ("flags", "news2", "news2_partial")]
        query = readings.select().where(readings.c.t >= since).order_by(readings.c.t)
        with self.store.engine.connect() as conn:
            return self.pipeline.rebuild(Reading(**{name: m[name] for name in columns})
                                         for m in (row._mapping for row in conn.execute(query)))

    def decide(self, messages: list[Message]) -> Decision:
        """Score a batch, announce its alerts, hand their changes to the desk (its rows join the
        batch: one transaction) and queue the batch on the writer thread."""
        decision = self.pipeline.process(messages)
        self._announce(decision)
        self._queue(decision)
        self._tell_devices()
        return decision

    def _tell_devices(self) -> None:
        """Publish this batch's refusals back to their devices (rate-limited; issue 13)."""
        out = [m for m in map(self.feedback.admit, self.pipeline.take_feedback()) if m is not None]
        if not out:
            return
        if self.broker is not None:
            publish = Broker._broadcast_message  # amqtt's own routing: neither the tap nor the guard
            for topic, payload in out:
                task = asyncio.get_running_loop().create_task(publish(self.broker, None, topic, payload, 1))
                self._feedback_tasks.add(task)
                task.add_done_callback(self._feedback_tasks.discard)
        elif isinstance(self.source, MqttSource):
            for topic, payload in out:
                self.source.client.publish(topic, payload, qos=1, retain=False)

    def _announce(self, decision: Decision) -> None:
        if self.announce is not None:
            for announced in decision.announced:
                self.announce(announced)

    def _queue(self, decision: Decision) -> None:
        """The desk's share of the alert changes joins the batch (one transaction), and the batch
        goes to the writer thread."""
        if decision.alert_changes:
            self.alerting.desk.take(decision.alert_changes, decision.batch)
        if decision.batch:
            self.writer.write(decision.batch)

    async def _process_forever(self) -> None:
        assert self.source is not None
        source = self.source
        while True:
            messages = await source.take(self.batch_max, timeout=0.25)
            if not messages:
                continue
            started = time.perf_counter()
            try:
                decision = self.decide(messages)
            except Exception as exc:  # keep serving; the broker will redeliver what was not acked
                self._failed(exc, messages)
                await asyncio.sleep(0.5)
                continue
            # Waits when too many batches are unstored.
            await self.unstored.submit(Unstored(self.writer.barrier(), messages, notifies(decision.batch)))
            # A batch blocks this event loop, and with it the embedded broker that feeds us. Unless
            # a full batch is already waiting, yield for as long as the batch took (at most
            # BATCH_YIELD_MAX_S): the broker catches up and the next batch is larger, so per-batch
            # costs (transaction, model run) are shared by more messages. Without this, under load
            # the loop alternates between one message of broker work and a batch of one or two
            # messages, at about half the throughput. At low rates this adds a few milliseconds.
            if source.depth < self.batch_max:
                await asyncio.sleep(min(BATCH_YIELD_MAX_S, time.perf_counter() - started))

    def _stored(self, unstored: Unstored) -> None:
        """Once a batch is durable: acknowledge its messages (PUBACK), and ring the dispatcher if
        the batch queued notifications."""
        assert self.source is not None
        self.source.acknowledge(unstored.messages)
        self.processed_batches += 1
        self.processed_messages += len(unstored.messages)
        if unstored.ring:
            self.alerting.desk.committed()

    def _store_failed(self, unstored: Unstored, exc: Exception, retry_in_s: float | None) -> None:
        self._failed(exc, unstored.messages)

    def _failed(self, exc: Exception, messages: list[Message]) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("batch failed: not acknowledged, its messages will be sent again", exc_info=exc,
                  extra={"messages": len(messages)})
        self.alerting.desk.restore()  # the desk ran ahead of the failed transaction
        if self.source is not None:
            self.source.not_stored(messages)  # embedded broker: its publishers reconnect and resend

    async def tick(self, now: float) -> None:
        """Run the timers: patients' (silent devices), then the desk's (escalations, reminders),
        in one transaction with the desk's share of the alert changes; wait until it is durable."""
        for profile in self.registry.patients():  # every enrolled patient is watched, seen or not (coverage)
            self.patients.get(profile.patient_id)
        decision = self.pipeline.tick(now)
        self.coverage.update(self.patients.in_memory(), now)
        self._announce(decision)
        self.alerting.desk.tick(now, decision.batch)
        self._queue(decision)
        await self.writer.barrier()
        if notifies(decision.batch):
            self.alerting.desk.committed()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.tick(self.clock())
            except Exception:
                log.exception("tick failed")
                self.alerting.desk.restore()

    async def purge(self) -> dict[str, int]:
        """The retention purge now (it also runs at start and hourly): rows deleted per kind."""
        return await self.retention.purge()

    async def purge_dead_letters(self) -> int:
        return await self.retention.purge_dead_letters()

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until every message received so far has been processed (or `timeout` passes)."""
        deadline = time.time() + timeout
        await asyncio.sleep(0.3)  # let in-flight deliveries from the broker arrive
        while self.source and self.processed_messages < self.source.received and time.time() < deadline:
            await asyncio.sleep(0.05)

    def queue_depth(self) -> int:
        return self.source.depth if self.source else 0

    def health(self) -> dict[str, object]:
        connected = bool(self.source and self.source.is_connected())
        # Degraded: the last batch failed, a patient is not monitored and nobody was told, or a
        # notification reached nobody (issue 13).
        degraded_because = [r for r in (self.last_error, self.coverage.failing, self.alerting.undelivered()) if r]
        return {
            "status": health_status(running=connected, failing=bool(degraded_because)),
            "degraded_because": degraded_because,
            "coverage": self.coverage.report,
            "mqtt": {"url": self.mqtt_url, "connected": connected, "embedded_broker": self.broker is not None,
                     **(self.access.health() if self.access is not None else {})},
            "store": {"url": self.store.url.split("///")[0] + "///…"},
            "queue_depth": self.queue_depth(),
            "patients": len(self.patients),
            "readings": self.pipeline.totals.readings,
            "rejected": sum(self.pipeline.totals.rejected.values()),
            "scoring": "rules+models" if self.pipeline.model_stage is not None else "rules",
            "models": self.models_status,
            "alerting": self.alerting.health(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "last_error": self.last_error,
        }

    async def stop(self) -> None:
        """Stop gracefully (the skeleton's order: intake, in-flight batches, parts, HTTP)."""
        await self.skeleton.stop()

    async def stop_intake(self) -> None:
        """Take no more batches: stop the processing loop (the first task)."""
        if self.tasks:
            await cancel_tasks(self.tasks[:1])

    async def drain_in_flight(self) -> None:
        """Let the processed batches become durable and acknowledged (at most 10 s), then stop
        acknowledging and ticking."""
        if self.tasks and not await self.unstored.drain(10):
            log.error("stopping with batches not yet stored; their messages will be sent again")
        self.unstored.cancel()  # never acknowledged: publishers resend them to the next process
        if self.source is not None:
            await self.source.acknowledged()
        await cancel_tasks(self.tasks[1:])

    async def close(self) -> None:
        if self.source is not None:
            self.source.stop()
        await self.alerting.stop()
        if self.broker is not None:
            await self.broker.shutdown()
        self.writer.close()
        self.store.close()
        if self.holder is not None:
            self.holder.release()
