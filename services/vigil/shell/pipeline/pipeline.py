"""The processing shell: raw MQTT messages in; the core's verdicts stored and announced.

It checks each payload against the contract, feeds accepted readings to each patient's
PatientMonitor, and turns what the core decided into rows for the store (readings, alerts,
audit trail, dead letters) and calls to `announce` for alerts. One `process` call is one store
transaction, so a batch is kept whole or not at all. Nothing here is clinical logic.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from vigil.shell.desk.desk import AlertChange, AlertDesk
from vigil.shell.contract.device import DeviceStatus
from vigil.shell.mqtt.message import Message
from vigil.shell.contract.topics import device_id_from_topic
from vigil.shell.contract.validation import ContractLimits, Rejection, RejectReason, check_vitals_payload
from vigil.core.events import (
    Alert,
    AlertCleared,
    AlertRaised,
    AlertSeverityChanged,
    Event,
    ReadingRejected,
)
from vigil.core.patient import PatientMonitor
from vigil.core.quality import DEFAULT_QUALITY, QualityLimits
from vigil.core.reading import Reading
from vigil.shell.explain.templates import AlertTexts, alert_texts
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.shell.stores.rows import AlertEventRow, AlertRow, DeadLetterRow, DeviceStatusRow, ReadingRow, ScoreRow
from vigil.shell.stores.sql import WriteBatch

log = logging.getLogger("vigil.pipeline")


@dataclass(slots=True)
class AnnouncedAlert:
    """An alert event as the outside world sees it: the alert, its words, and how fast it came."""

    event: str  # raised, severity_changed, cleared
    alert: Alert
    patient_message: str
    clinician_summary: str
    latency_s: float
    source: Message | None = None  # the message whose reading raised it (None for timers)
    t: float = 0.0  # when it happened, on the readings' clock


@dataclass(slots=True)
class PipelineTotals:
    payloads: int = 0
    readings: int = 0
    rejected: Counter = field(default_factory=Counter)
    alerts_by_kind: Counter = field(default_factory=Counter)
    alert_latencies_s: list[float] = field(default_factory=list)
    raised: list[Alert] = field(default_factory=list)


class AlertSink(Protocol):
    """Where a processed batch goes: the SQL store here; InfluxDB and Kafka in the scaled mode."""

    def write(self, batch: WriteBatch) -> None: ...

    def known_alerts(self, alert_ids: list[str]) -> set[str]: ...


class ModelStage(Protocol):
    """Learned scoring, run once per batch over every patient the batch touched (issue 3).

    A serving stage also has `latest`: each patient's newest scores (t, anomaly, risk,
    model_version), which the pipeline stores with the batch."""

    def run(self, monitors: list[PatientMonitor]) -> list[Event]: ...


class Pipeline:
    def __init__(
        self,
        registry: Registry,
        store: AlertSink,
        metrics: Metrics,
        *,
        limits: ContractLimits = ContractLimits(),
        announce: Callable[[AnnouncedAlert], None] | None = None,
        quality: QualityLimits = DEFAULT_QUALITY,
    ) -> None:
        self.registry = registry
        self.quality = quality
        self.store = store
        self.metrics = metrics
        self.limits = limits
        self.announce = announce
        self.monitors: dict[str, PatientMonitor] = {}
        self.totals = PipelineTotals()
        self.quiet = False  # True while rebuilding state: decide, but announce nothing
        self.model_stage: ModelStage | None = None
        self.desk: AlertDesk | None = None  # incidents and notifications (vigil.shell.desk), when wired

    def monitor(self, patient_id: str) -> PatientMonitor:
        monitor = self.monitors.get(patient_id)
        if monitor is None:
            monitor = self.monitors[patient_id] = self.new_monitor(patient_id)
            self.metrics.patients.set(len(self.monitors))
        return monitor

    def new_monitor(self, patient_id: str) -> PatientMonitor:
        return PatientMonitor(patient_id, self.registry.context_for(patient_id), quality=self.quality)

    # -- the hot path -------------------------------------------------------------------------

    def process(self, messages: list[Message], now: float | None = None) -> WriteBatch:
        """Check raw MQTT messages, score them, and store the outcome; return what was written."""
        started = time.perf_counter()
        batch = WriteBatch()
        events: list[tuple[Event, Message | None]] = []
        touched: dict[str, PatientMonitor] = {}
        patient_for_device = self.registry.patient_for_device
        vitals = 0
        for message in messages:
            if message.topic.endswith("/status"):
                self._status(message, batch)
                continue
            vitals += 1
            checked = check_vitals_payload(
                message.topic, message.payload, received_at=message.received_at,
                patient_for_device=patient_for_device, limits=self.limits,
            )
            for rejection in checked.rejections:
                self._reject(rejection, batch)
            if checked.readings:
                self._observe(checked.readings, message, batch, events, touched)
        self.totals.payloads += vitals
        self.metrics.payloads.inc(vitals)
        return self._finish(batch, events, touched, now, started)

    def process_readings(self, groups: list[tuple[list[Reading], Message]], now: float | None = None) -> WriteBatch:
        """Score readings that a gateway already checked against the contract (the Kafka path)."""
        started = time.perf_counter()
        batch = WriteBatch()
        events: list[tuple[Event, Message | None]] = []
        touched: dict[str, PatientMonitor] = {}
        for readings, source in groups:
            if readings:
                self._observe(readings, source, batch, events, touched)
        self.totals.payloads += len(groups)
        self.metrics.payloads.inc(len(groups))
        return self._finish(batch, events, touched, now, started)

    def _observe(self, readings: list[Reading], message: Message, batch: WriteBatch,
                 events: list[tuple[Event, Message | None]], touched: dict[str, PatientMonitor]) -> None:
        """One patient's readings from one message through the core."""
        metrics = self.metrics
        monitor = self.monitor(readings[0].patient_id)
        touched[monitor.patient_id] = monitor
        accepted = 0
        for reading in readings:
            assessment = monitor.observe(reading)
            if not assessment.accepted:
                for event in assessment.events:
                    if isinstance(event, ReadingRejected):
                        self._reject_reading(event, reading, message, batch)
                continue
            accepted += 1
            news2 = assessment.news2
            flags = assessment.flags
            for flag in flags:
                metrics.quality.labels(flag).inc()
            batch.readings.append(_reading_row(reading, ",".join(flags), news2.score if news2 else None,
                                               news2.partial if news2 else None))
            for event in assessment.events:
                events.append((event, message))
        self.totals.readings += accepted
        metrics.readings.inc(accepted)

    def _finish(self, batch: WriteBatch, events: list[tuple[Event, Message | None]],
                touched: dict[str, PatientMonitor], now: float | None, started: float) -> WriteBatch:
        if self.model_stage is not None and touched:
            # One batched inference for every patient this batch touched.
            events.extend((event, None) for event in self.model_stage.run(list(touched.values())))
            latest = getattr(self.model_stage, "latest", None) or {}  # a stage may keep no scores (training)
            for patient_id, monitor in touched.items():
                score = latest.get(patient_id)
                if score is not None and score.t == monitor.last_seen_t:  # scored in this batch
                    batch.scores.append(ScoreRow(patient_id, score.t, score.anomaly, score.risk, score.model_version))
        changes = self._alert_events(events, batch, now)
        self._write(batch, changes)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return batch

    def tick(self, now: float) -> WriteBatch:
        """Advance every patient's timers (silent devices) and the desk's (escalations, reminders)."""
        batch = WriteBatch()
        events: list[tuple[Event, Message | None]] = [(event, None) for monitor in self.monitors.values() for event in monitor.tick(now)]
        changes = self._alert_events(events, batch, now) if events else []
        if self.desk is not None and not self.quiet:
            self.desk.tick(now, batch)
        self._write(batch, changes)
        return batch

    def _write(self, batch: WriteBatch, changes: list[AlertChange]) -> None:
        """One transaction: the batch, and the incidents and outbox rows its alert changes cause.
        Whoever knows when the write is durable wakes the dispatcher (`notifies`)."""
        desk = self.desk
        if desk is not None and changes and not self.quiet:
            desk.take(changes, batch)
        if not batch:
            return
        self.store.write(batch)

    # -- pieces -------------------------------------------------------------------------------

    def _status(self, message: Message, batch: WriteBatch) -> None:
        try:
            status = DeviceStatus.model_validate_json(message.payload)
        except ValidationError as exc:
            self._reject(Rejection(RejectReason.SCHEMA_INVALID, str(exc.errors(include_url=False)[:2])[:300],
                                   message.payload, message.topic, device_id_from_topic(message.topic), message.received_at), batch)
            return
        batch.device_status.append(DeviceStatusRow(
            status.device_id, status.state, status.ts.timestamp() if status.ts else message.received_at, status.battery_pct,
        ))

    def _reject(self, rejection: Rejection, batch: WriteBatch) -> None:
        reason = str(rejection.reason)
        self.totals.rejected[reason] += 1
        self.metrics.rejected.labels(reason).inc()
        log.info("payload rejected", extra={"reason": reason, "device_id": rejection.device_id,
                                            "topic": rejection.topic, "sample_index": rejection.sample_index,
                                            "detail": rejection.detail})
        batch.dead_letters.append(DeadLetterRow(
            rejection.received_at, rejection.topic, rejection.device_id, rejection.patient_id, reason, rejection.detail,
            rejection.sample_index, rejection.raw,
        ))

    def _reject_reading(self, event: ReadingRejected, reading: Reading, message: Message, batch: WriteBatch) -> None:
        raw = _reading_row(reading, "", None, None)._asdict()  # the dead letter keeps the row as a dict, as before
        self._reject(Rejection(RejectReason(event.reason), event.detail, repr(raw).encode(), message.topic,
                               event.device_id, message.received_at, None, event.patient_id), batch)

    def _alert_events(self, events: list[tuple[Event, Message | None]], batch: WriteBatch, now: float | None) -> list[AlertChange]:
        changes: list[AlertChange] = []
        if not events:
            return changes
        wall = time.time()
        raised_ids = [e.alert.alert_id for e, _ in events if isinstance(e, AlertRaised)]
        known = self.store.known_alerts(raised_ids) if raised_ids else set()
        for event, source in events:
            if isinstance(event, ReadingRejected):
                continue
            alert = event.alert
            texts: AlertTexts | None = None
            if isinstance(event, AlertRaised):
                name = "raised"
                texts = alert_texts(alert, name_model=True)
                if alert.alert_id in known:
                    # Already raised before a restart: the same id from the same onset. Never again.
                    continue
                self.totals.alerts_by_kind[alert.kind] += 1
                self.totals.raised.append(alert)
                self.metrics.alerts.labels(alert.kind, alert.severity).inc()
                self.metrics.open_alerts.inc()
            elif isinstance(event, AlertSeverityChanged):
                name = "severity_changed"
            elif isinstance(event, AlertCleared):
                name = "cleared"
                self.metrics.open_alerts.dec()
            else:  # pragma: no cover - the Event union is closed
                continue
            self.metrics.alert_events.labels(name).inc()
            batch.alerts.append(AlertRow.of(alert, texts.patient if texts else None, texts.clinician if texts else None))
            event_t = getattr(event, "t", alert.raised_t)
            changes.append(AlertChange.of(name, alert, event_t))
            batch.alert_events.append(AlertEventRow(alert.alert_id, name, event_t, "vigil", {"severity": alert.severity}))
            if self.quiet:
                continue
            latency = 0.0 if source is None else max(0.0, wall - source.received_at)
            if name == "raised" and source is not None:
                self.totals.alert_latencies_s.append(latency)
                self.metrics.latency.observe(latency)
            log.info("alert " + name, extra={"alert_id": alert.alert_id, "patient_id": alert.patient_id,
                                             "kind": alert.kind, "severity": alert.severity})
            if self.announce is not None:
                texts = texts or alert_texts(alert, name_model=True)
                self.announce(AnnouncedAlert(name, alert, texts.patient, texts.clinician, latency, source, event_t))
        return changes


def _reading_row(reading: Reading, flags: str, news2: int | None, partial: bool | None) -> ReadingRow:
    # `_make` skips the NamedTuple's Python-level __new__: this runs once per sample.
    return ReadingRow._make((
        reading.patient_id, reading.device_id, reading.t, reading.seq, reading.hr, reading.spo2, reading.rr,
        reading.temp, reading.sbp, reading.dbp, reading.steps, reading.accel, reading.battery, reading.on_oxygen,
        reading.acvpu, flags, news2, partial,
    ))
