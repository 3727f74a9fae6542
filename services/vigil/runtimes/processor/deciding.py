"""A batch of readings records decided: scored, its alert records sent, the rest made ready to store.

Only the critical path runs here (parse, score, send the alert records: they are what a
clinician waits for). Everything else the batch implies is encoded into a `Decided`, which
`storing.DecidedStore` stores, in order, while later batches are decided.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from vigil.runtimes.processor.patient_cache import TablePatientStates
from vigil.runtimes.processor.silence import SilenceWatch
from vigil.runtimes.processor.timings import BatchTimings
from vigil.shell.pipeline.pipeline import Decision, Message, Pipeline
from vigil.shell.streams.records import AlertRecord, AlertSnapshot, DeadLetterRecord, ReadingsRecord, ScoreRecord
from vigil.shell.stores.sql import WriteBatch


class Sender(Protocol):
    """A Kafka topic to send to (a Faust topic): awaiting `send` hands the record to the producer
    and gives back its delivery, to await once Kafka has acknowledged it."""

    def send(self, *, key: bytes, value: bytes) -> Awaitable[Awaitable[Any]]: ...


@dataclass(slots=True)
class Decided:
    """A scored batch waiting to be stored: its events stay unacknowledged until it is."""

    events: list[Any]  # the Faust events (a silence check has none)
    batch: WriteBatch
    alerts: list[tuple[bytes, bytes]]  # alert records already sent: (key, value)
    deliveries: list[Any]  # their deliveries, awaited before the alert rows are stored
    others: list[tuple[Sender, bytes, bytes]]  # scores and dead letters, sent while storing
    snapshot: list[tuple[bytes, bytes]]  # patients' state as of this batch, written last
    started: float
    stages: dict[str, float]
    retry: bool = False


class BatchDecider:
    """Decides batches of readings records and silence checks; sends alert records at once."""

    def __init__(self, pipeline: Pipeline, patients: TablePatientStates, silence: SilenceWatch,
                 alerts: Sender, deadletters: Sender, timings: BatchTimings) -> None:
        self.pipeline = pipeline
        self.patients = patients
        self.silence = silence
        self.alerts = alerts
        self.deadletters = deadletters
        self.timings = timings

    async def decide(self, events: list[Any]) -> Decided:
        """Score a batch and send its alerts: the critical path, nothing else on it."""
        t0 = time.perf_counter()
        records = [ReadingsRecord.model_validate_json(event.value) for event in events]
        per_patient = Counter(record.patient_id for record in records for _ in record.readings)
        self.silence.heard(per_patient, time.time())
        notes = [(r.patient_id, r.device_id, r.received_at, r.refused, r.status) for r in records
                 if r.refused is not None or r.status is not None]
        decision = self.pipeline.process_readings(
            [(record.to_readings(), Message(record.topic, b"", record.received_at)) for record in records
             if record.readings], notes=notes)
        oldest = min(record.received_at for record in records) if records else None
        return await self.outcome(decision, t0, events, per_patient, oldest)

    async def decide_silence(self, patient_ids: list[str], now: float, silent: set[str] | None = None) -> Decided | None:
        """Run the core's timers for these patients (only `silent` ones may be judged silent:
        all when None); None when no alert changed."""
        decision = self.pipeline.tick(now, patient_ids, silent)
        if not decision.alert_changes:
            return None
        return await self.outcome(decision, time.perf_counter(), [])

    async def outcome(self, decision: Decision, t0: float, events: list[Any],
                      per_patient: Counter[str] | None = None, oldest_received: float | None = None) -> Decided:
        """What a decided batch (or silence check) sends at once, and what it leaves to store.
        Scores go out for the patients with readings (`per_patient`); a silence check has none."""
        clock = time.perf_counter
        announced = decision.announced
        # Alert records go out first: they are what a clinician waits for.
        alerts = [(event.alert.patient_id.encode(), AlertRecord(
            event=event.event, alert=AlertSnapshot.of(event.alert), t=event.t, patient_message=event.patient_message,
            clinician_summary=event.clinician_summary).model_dump_json().encode()) for event in announced]
        deliveries = [await self.alerts.send(key=key, value=value) for key, value in alerts]
        t_core = clock()
        if announced and oldest_received is not None:
            self.timings.alert_sent(time.time() - oldest_received)
        monitors = decision.patients
        models = decision.model_scores
        others: list[tuple[Sender, bytes, bytes]] = []
        for patient_id, readings in (per_patient or {}).items():
            monitor = monitors[patient_id]
            news2 = monitor.last_news2
            model = models.get(patient_id)
            others.append((self.alerts, patient_id.encode(), ScoreRecord(
                patient_id=patient_id, t=monitor.last_seen_t or 0.0, news2=news2.score if news2 else None,
                news2_partial=news2.partial if news2 else None, readings=readings,
                anomaly=model.anomaly if model else None, risk=model.risk if model else None,
                model_version=model.model_version if model else None).model_dump_json().encode()))
        for row in decision.batch.dead_letters:
            others.append((self.deadletters, (row.device_id or "unknown").encode(),
                           DeadLetterRecord.of_row(row).model_dump_json().encode()))
        # State as of this batch, taken now: the next batch moves these monitors on while this
        # one is stored, and the table must never get ahead of what InfluxDB and PostgreSQL hold.
        snapshot = self.patients.snapshot(monitors)
        t_end = clock()
        return Decided(events, decision.batch, alerts, deliveries, others, snapshot, t0,
                       {"core": t_core - t0, "encode": t_end - t_core})
