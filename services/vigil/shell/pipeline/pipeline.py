"""The processing shell: raw MQTT messages (or checked readings) in; one Decision out.

It checks each payload against the contract, feeds accepted readings to each patient's
PatientMonitor, and turns what the core decided into a Decision: rows for the store (readings,
alerts, audit trail, dead letters, scores), alert changes for the desk, and the announcements.
It stores nothing and calls no one: the runtime hands the changes to the desk and stores the
batch in one transaction, so a batch is kept whole or not at all. Nothing here is clinical logic.
"""

# Long file: one decision path (contract, core, coverage, alert events) that reads best whole.
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vigil.shell.desk.desk import AlertChange
from vigil.shell.mqtt.message import Message
from vigil.shell.contract.status import check_status_payload
from vigil.shell.contract.validation import ContractLimits, Rejection, RejectReason, check_vitals_payload, internal_error
from vigil.core.events import (
    Alert,
    AlertCleared,
    AlertRaised,
    AlertSeverityChanged,
    Event,
    ReadingRejected,
)
from vigil.core.patient import PatientMonitor
from vigil.core.quality import DEFAULT_QUALITY, LATE, QualityLimits
from vigil.core.reading import Reading
from vigil.shell.explain.templates import AlertTexts, alert_texts
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.decision import AnnouncedAlert, Decision, ModelScore
from vigil.shell.pipeline.patients import PatientBook, PatientStates, monitor_factory
from vigil.shell.contract.feedback import DeviceError
from vigil.shell.registry import Registry
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.rows import AlertEventRow, AlertRow, DeviceStatusRow, ReadingRow, ScoreRow
from vigil.shell.stores.sql import WriteBatch

__all__ = ["AnnouncedAlert", "CoverageNote", "Decision", "KnownAlerts", "Message", "ModelStage", "NOTHING_STORED", "Pipeline"]

log = logging.getLogger("vigil.pipeline")
_LATE_ONLY = (LATE,)
# A gateway's coverage note: (patient_id, device_id, received_at, refused reasons and counts, status).
CoverageNote = tuple[str, str, float, "dict[str, int] | None", "str | None"]


@dataclass(slots=True)
class PipelineTotals:
    payloads: int = 0
    readings: int = 0
    rejected: Counter = field(default_factory=Counter)
    alerts_by_kind: Counter = field(default_factory=Counter)
    alert_latencies_s: list[float] = field(default_factory=list)
    raised: list[Alert] = field(default_factory=list)


class KnownAlerts(Protocol):
    """Which alert ids were already stored: a raised alert with a stored id (a restart, a replayed
    batch) is never raised again. The SQL store answers it."""

    def known_alerts(self, alert_ids: list[str]) -> set[str]: ...


class _NothingStored:
    """For runs with no store behind them (replay, benches): no alert was raised before."""

    def known_alerts(self, alert_ids: list[str]) -> set[str]:
        return set()


NOTHING_STORED: KnownAlerts = _NothingStored()


class ModelStage(Protocol):
    """Learned scoring, run once per batch over every patient the batch touched (issue 3).

    A serving stage also has `latest`: each patient's newest scores (t, anomaly, risk,
    model_version), which the pipeline stores with the batch."""

    def run(self, monitors: list[PatientMonitor]) -> list[Event]: ...


class Pipeline:
    """Contract checks, the clinical core and the model stage over a batch: one Decision back.

    Everything it needs comes to the constructor: where patients' monitors live, which alert
    ids are already stored, the model stage, the contract and quality limits."""

    def __init__(
        self,
        registry: Registry,
        metrics: Metrics,
        known_alerts: KnownAlerts,
        *,
        patients: PatientStates | None = None,
        model_stage: ModelStage | None = None,
        limits: ContractLimits = ContractLimits(),
        quality: QualityLimits = DEFAULT_QUALITY,
        dead_letters: DeadLetterKeeper | None = None,
        emergency_number: str = "999",
    ) -> None:
        """`patients` defaults to a PatientBook (every monitor in a dict, counted on the
        patients gauge); the scaled runtime passes its table-backed cache instead. `dead_letters`
        decides what is kept of each rejection (capped bytes, a rate limit per device).
        `emergency_number` (VIGIL_EMERGENCY_NUMBER) is the one the stored alert texts quote."""
        self.emergency_number = emergency_number
        self.registry = registry
        self.quality = quality
        self.metrics = metrics
        self.known_alerts = known_alerts
        self.limits = limits
        self.patients: PatientStates = patients if patients is not None else PatientBook(
            monitor_factory(registry, quality), metrics.patients.set)
        self.model_stage = model_stage
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetterKeeper()
        self.totals = PipelineTotals()
        # Receipt times (wall clock) onto the clock the runtime ticks with: the identity, except
        # in `vigil demo`, whose ward lives on an accelerated simulated clock (coverage timers).
        self.receipt_clock: Callable[[float], float] = _same_time
        self.tell_devices = False  # the runtime turns it on when it publishes refusals back (take_feedback)
        self.feedback: list[DeviceError] = []

    # -- the hot path -------------------------------------------------------------------------

    def process(self, messages: list[Message], now: float | None = None) -> Decision:
        """Check raw MQTT messages and score them; return what to store, tell and announce."""
        started = time.perf_counter()
        decision = Decision()
        batch = decision.batch
        events: list[tuple[Event, Message | None]] = []
        touched = decision.patients
        patient_for_device = self.registry.patient_for_device
        vitals = 0
        for message in messages:
            # One message's failure is that message's dead letter, never the batch's loss.
            try:
                if message.topic.endswith("/status"):
                    self._status(message, batch, events, touched)
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
                # Coverage hears a message's refusals after its good samples (core.coverage).
                for rejection in checked.rejections:
                    self.refused(rejection.patient_id, rejection.device_id, str(rejection.reason),
                                 rejection.received_at, events, touched)
            except Exception as exc:  # noqa: BLE001 - isolation is the point: kept, counted, traced
                self._internal_error(message, exc, batch)
        self.totals.payloads += vitals
        self.metrics.payloads.inc(vitals)
        return self._finish(decision, events, now, started)

    def process_readings(self, groups: list[tuple[list[Reading], Message]], now: float | None = None,
                         notes: Iterable[CoverageNote] = ()) -> Decision:
        """Score readings that a gateway already checked against the contract (the Kafka path);
        `notes` are the gateway's coverage notes (a device's refusals, its status), after them."""
        started = time.perf_counter()
        decision = Decision()
        batch = decision.batch
        events: list[tuple[Event, Message | None]] = []
        touched = decision.patients
        for readings, source in groups:
            try:
                if readings:
                    self._observe(readings, source, batch, events, touched)
            except Exception as exc:  # noqa: BLE001 - as in `process`: one group, not the batch
                self._internal_error(source, exc, batch)
        for patient_id, device_id, received_at, refused, status in notes:
            for reason, count in (refused or {}).items():
                self.refused(patient_id, device_id, reason, received_at, events, touched, count)
            if status is not None:
                self.device_status(patient_id, device_id, status, received_at, events, touched)
        self.totals.payloads += len(groups)
        self.metrics.payloads.inc(len(groups))
        return self._finish(decision, events, now, started)

    def _observe(self, readings: list[Reading], message: Message, batch: WriteBatch,
                 events: list[tuple[Event, Message | None]], touched: dict[str, PatientMonitor]) -> None:
        """One patient's readings from one message through the core."""
        metrics = self.metrics
        monitor = self.patients.get(readings[0].patient_id)
        touched[monitor.patient_id] = monitor
        accepted = late = 0
        newest = None
        refusal = ""
        reading = readings[0]
        try:
            for reading in readings:
                assessment = monitor.observe(reading)
                if not assessment.accepted:
                    for event in assessment.events:
                        if isinstance(event, ReadingRejected):
                            self._reject_reading(event, reading, message, batch)
                            refusal = event.reason
                    continue
                news2 = assessment.news2
                flags = assessment.flags
                if news2 is None and flags == _LATE_ONLY:
                    late += 1
                elif newest is None or reading.t > newest:
                    newest = reading.t
                row = _reading_row(reading, ",".join(flags), news2.score if news2 else None,
                                   news2.partial if news2 else None)
                for flag in flags:
                    metrics.quality.labels(flag).inc()
                # The row and its events go in together, after everything that could fail: a
                # reading the monitor took is stored with all its events, or (failing) not at all.
                batch.readings.append(row)
                events.extend((event, message) for event in assessment.events)
                accepted += 1
        except Exception as exc:
            raise _ReadingFailed(reading.seq, accepted) from exc
        finally:
            self.totals.readings += accepted
            metrics.readings.inc(accepted)
        # Coverage, on the wall clock: heard when a sample was assessed; then the message's refused
        # samples (clock, duplicate), or its late ones when nothing in it was new.
        received = self.receipt_clock(message.received_at)
        if newest is not None:
            events.extend((event, None) for event in monitor.heard(received, newest))
        if refusal or (late and newest is None):
            count = len(readings) - accepted if refusal else late
            events.extend((event, None) for event in monitor.refused(received, refusal or LATE, count))

    def _finish(self, decision: Decision, events: list[tuple[Event, Message | None]],
                now: float | None, started: float) -> Decision:
        touched = decision.patients
        if self.model_stage is not None and touched:
            # One batched inference for every patient this batch touched.
            events.extend((event, None) for event in self.model_stage.run(list(touched.values())))
            latest = getattr(self.model_stage, "latest", None) or {}  # a stage may keep no scores (training)
            scores: dict[str, ModelScore] = decision.model_scores
            for patient_id, monitor in touched.items():
                score = latest.get(patient_id)
                if score is None:
                    continue
                scores[patient_id] = score
                if score.t == monitor.last_seen_t:  # scored in this batch
                    decision.batch.scores.append(ScoreRow(patient_id, score.t, score.anomaly, score.risk,
                                                          score.model_version))
        self._alert_events(events, decision, now)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return decision

    def tick(self, now: float, patient_ids: Iterable[str] | None = None, silent: Collection[str] | None = None) -> Decision:
        """Advance patients' timers (silent devices, coverage): every monitor in memory, or the
        ones named; with `silent`, only those may be judged silent (the worker's own clock). The
        desk's own timers (escalations, reminders) are the runtime's to run."""
        decision = Decision()
        if patient_ids is None:
            monitors = list(self.patients.in_memory())
        else:
            monitors = [self.patients.get(patient_id) for patient_id in patient_ids]
        events: list[tuple[Event, Message | None]] = [
            (event, None) for monitor in monitors
            for event in monitor.tick(now, silent is None or monitor.patient_id in silent)]
        if events:
            changed: set[str] = set()
            self._alert_events(events, decision, now, changed)
            decision.patients.update((monitor.patient_id, monitor) for monitor in monitors
                                     if monitor.patient_id in changed)
        return decision

    def rebuild(self, readings: Iterable[Reading]) -> int:
        """Replay stored readings (oldest first) through the core, quietly, so that timers and open
        alerts are exactly as before a restart: decided, but nothing stored, told or announced
        (alert ids are stable, so nothing repeats later). Model alerts are rebuilt too, one model
        run per minute of readings. Returns the number of readings replayed."""
        stage = self.model_stage
        touched: dict[str, PatientMonitor] = {}
        minute = None
        count = 0
        for reading in readings:
            if stage is not None and minute is not None and reading.t // 60 != minute and touched:
                stage.run(list(touched.values()))  # their events are dropped: quiet
                touched.clear()
            minute = reading.t // 60
            monitor = self.patients.get(reading.patient_id)
            monitor.observe(reading)
            touched[reading.patient_id] = monitor
            count += 1
        if stage is not None and touched:
            stage.run(list(touched.values()))
        self.metrics.open_alerts.set(sum(len(m.open_alerts()) for m in self.patients.in_memory()))
        return count

# -- pieces -------------------------------------------------------------------------------

    def _status(self, message: Message, batch: WriteBatch, events: list[tuple[Event, Message | None]],
                touched: dict[str, PatientMonitor]) -> None:
        """A device's retained status: stored, and told to its patient's coverage (a last will
        `offline` is the fast path to a technical alert)."""
        checked = check_status_payload(message.topic, message.payload, received_at=message.received_at,
                                       patient_for_device=self.registry.patient_for_device, limits=self.limits)
        if checked.rejection is not None:  # also: another device's id, or a device not enrolled (issue 11)
            return self._reject(checked.rejection, batch)
        status = checked.status
        assert status is not None
        t = status.ts.timestamp() if status.ts else message.received_at
        batch.device_status.append(DeviceStatusRow(status.device_id, status.state, t, status.battery_pct))
        self.device_status(None, status.device_id, status.state, message.received_at, events, touched)

    def device_status(self, patient_id: str | None, device_id: str, state: str, received_at: float,
                      events: list[tuple[Event, Message | None]], touched: dict[str, PatientMonitor]) -> None:
        """Tell an enrolled device's patient its status (on the wall clock: its receipt)."""
        patient_id = patient_id or self.registry.patient_for_device(device_id)
        if patient_id is not None:
            monitor = self.patients.get(patient_id)
            self._covered(monitor, monitor.device_status(state, self.receipt_clock(received_at)), events, touched)

    def refused(self, patient_id: str | None, device_id: str | None, reason: str, received_at: float,
                events: list[tuple[Event, Message | None]], touched: dict[str, PatientMonitor], count: int = 1) -> None:
        """Tell an enrolled patient's coverage that its device's samples were refused."""
        if patient_id is None and device_id is not None:
            patient_id = self.registry.patient_for_device(device_id)
        if patient_id is not None:
            monitor = self.patients.get(patient_id)
            self._covered(monitor, monitor.refused(self.receipt_clock(received_at), reason, count), events, touched)

    @staticmethod
    def _covered(monitor: PatientMonitor, caused: list[Event], events: list[tuple[Event, Message | None]],
                 touched: dict[str, PatientMonitor]) -> None:
        """A coverage change's alert events; the patient counts as touched (scored, its state
        saved) only when an alert changed."""
        if caused:
            touched[monitor.patient_id] = monitor
            events.extend((event, None) for event in caused)

    def take_feedback(self) -> list[DeviceError]:
        """The refusals to tell devices since the last call (the runtime publishes them, rate-limited)."""
        feedback, self.feedback = self.feedback, []
        return feedback

    def _reject(self, rejection: Rejection, batch: WriteBatch, seq: int | None = None) -> None:
        reason = str(rejection.reason)
        if self.tell_devices:
            error = DeviceError.of(rejection, seq)
            if error is not None:
                self.feedback.append(error)
        self.totals.rejected[reason] += 1
        self.metrics.rejected.labels(reason).inc()
        log.info("payload rejected", extra={"reason": reason, "device_id": rejection.device_id,
                                            "topic": rejection.topic, "sample_index": rejection.sample_index,
                                            "detail": rejection.detail})
        # Counted whatever happens; the row is kept (its bytes capped) while the device's budget allows.
        if not self.dead_letters.add(batch, received_at=rejection.received_at, topic=rejection.topic,
                                     device_id=rejection.device_id, patient_id=rejection.patient_id, reason=reason,
                                     detail=rejection.detail, sample_index=rejection.sample_index, raw=rejection.raw,
                                     enrolled=self._enrolled(rejection)):
            self.metrics.dead_letters_not_kept.labels(reason).inc()

    def _enrolled(self, rejection: Rejection) -> bool:
        return rejection.patient_id is not None or (
            rejection.device_id is not None and self.registry.patient_for_device(rejection.device_id) is not None)

    def _internal_error(self, message: Message, exc: Exception, batch: WriteBatch) -> None:
        """Vigil failed on this one message: dead-letter it as `internal_error` with a trace id
        (in the log with the traceback, and in the dead letter's detail), and go on with the batch.

        State: the contract checks change nothing; in the core, readings the monitor fully took
        before the failure keep their rows and events (the monitor counted their seq, so dropping
        them would make a redelivery look like duplicates); the failing reading and the rest of
        the message are not stored, and this dead letter holds the whole message's bytes."""
        cause = exc.__cause__ if isinstance(exc, _ReadingFailed) and exc.__cause__ is not None else exc
        where = f"at seq {exc.seq}, {exc.stored} reading(s) before it stored; " if isinstance(exc, _ReadingFailed) else ""
        self._reject(internal_error(message.topic, message.payload, message.received_at, cause, log, where), batch)

    def _reject_reading(self, event: ReadingRejected, reading: Reading, message: Message, batch: WriteBatch) -> None:
        # The dead letter keeps the raw bytes as received (the message's); on the Kafka path, where
        # the worker has no raw bytes, the reading as JSON (issue 13: never a Python repr).
        raw = message.payload or json.dumps(_reading_row(reading, "", None, None)._asdict()).encode()
        self._reject(Rejection(RejectReason(event.reason), event.detail, raw, message.topic,
                               event.device_id, message.received_at, None, event.patient_id), batch, event.seq)

    def _alert_events(self, events: list[tuple[Event, Message | None]], decision: Decision, now: float | None,
                      changed: set[str] | None = None) -> None:
        """The core's alert events into the decision: rows, desk changes and announcements.
        `changed` collects the patients whose alerts changed (a tick's)."""
        if not events:
            return
        batch = decision.batch
        changes = decision.alert_changes
        announced = decision.announced
        wall = time.time()
        raised_ids = [e.alert.alert_id for e, _ in events if isinstance(e, AlertRaised)]
        known = self.known_alerts.known_alerts(raised_ids) if raised_ids else set()
        for event, source in events:
            if isinstance(event, ReadingRejected):
                continue
            alert = event.alert
            texts: AlertTexts | None = None
            if isinstance(event, AlertRaised):
                name = "raised"
                texts = alert_texts(alert, name_model=True, emergency_number=self.emergency_number)
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
            if changed is not None:
                changed.add(alert.patient_id)
            latency = 0.0 if source is None else max(0.0, wall - source.received_at)
            if name == "raised" and source is not None:
                self.totals.alert_latencies_s.append(latency)
                self.metrics.latency.observe(latency)
            log.info("alert " + name, extra={"alert_id": alert.alert_id, "patient_id": alert.patient_id,
                                             "kind": alert.kind, "severity": alert.severity})
            texts = texts or alert_texts(alert, name_model=True, emergency_number=self.emergency_number)
            announced.append(AnnouncedAlert(name, alert, texts.patient, texts.clinician, latency, source, event_t))


def _same_time(t: float) -> float:
    return t


class _ReadingFailed(Exception):
    """The core failed on one reading of a message (`stored` readings before it were taken)."""

    def __init__(self, seq: int, stored: int) -> None:
        super().__init__(f"reading seq {seq} failed")
        self.seq, self.stored = seq, stored


def _reading_row(reading: Reading, flags: str, news2: int | None, partial: bool | None) -> ReadingRow:
    # `_make` skips the NamedTuple's Python-level __new__: this runs once per sample.
    return ReadingRow._make((
        reading.patient_id, reading.device_id, reading.t, reading.seq, reading.hr, reading.spo2, reading.rr,
        reading.temp, reading.sbp, reading.dbp, reading.steps, reading.accel, reading.battery, reading.on_oxygen,
        reading.acvpu, flags, news2, partial,
    ))
