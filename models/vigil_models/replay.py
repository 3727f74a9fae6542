"""Drive a simulated cohort through the real processing pipeline, without MQTT or a database.

Training and evaluation both go through `Pipeline.process` (contract checks, the clinical
core, the model-stage seam), in batches of one simulated minute, exactly as the processor
would see them. A `FeatureRecorder` stage keeps the feature vector of every patient at every
batch (training data); the evaluation adds the real ONNX stage in front of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from vigil.core.events import Event
from vigil.core.features import patient_features
from vigil.core.patient import PatientMonitor
from vigil.core.quality import UNTRUSTED_OPTICAL
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Message, ModelStage, Pipeline
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil_simulators.cohort import CohortPlan, plan_cohort
from vigil_simulators.fleet import Fleet

START_T = 1_800_000_000.0  # a fixed simulated epoch: the same seed gives the same data
RATE_HZ = 1 / 15  # the demo's sampling rate
BATCH_SAMPLES = 4  # samples per MQTT message, as in the demo
WINDOW_S = 60.0  # one pipeline batch per simulated minute


@dataclass(slots=True)
class PatientSeries:
    """Everything recorded for one patient: scoring points and a light copy of each reading."""

    patient_id: str
    spo2_scale: int = 1
    t: list[float] = field(default_factory=list)  # scoring times
    features: list[list[float]] = field(default_factory=list)
    news2: list[int] = field(default_factory=list)  # NEWS2 at each scoring time
    at_rest: list[bool] = field(default_factory=list)
    # readings: (t, hr, spo2, rr, temp, sbp, dbp, news2, trusted_optical)
    readings: list[tuple] = field(default_factory=list)


class FeatureRecorder:
    """A model stage that computes and keeps the features of every patient a batch touched."""

    def __init__(self, series: dict[str, PatientSeries], inner: ModelStage | None = None, rest_g: float = 0.15) -> None:
        self.series = series
        self.inner = inner
        self.rest_g = rest_g

    def run(self, monitors: list[PatientMonitor]) -> list[Event]:
        events = self.inner.run(monitors) if self.inner is not None else []
        for monitor in monitors:
            t = monitor.last_seen_t
            if t is None:
                continue
            s = self.series.get(monitor.patient_id)
            if s is None:
                s = self.series[monitor.patient_id] = PatientSeries(monitor.patient_id, monitor.context.spo2_scale)
            s.t.append(t)
            s.features.append(patient_features(monitor, t))
            n2 = monitor.last_news2
            s.news2.append(n2.score if n2 is not None else 0)
            s.at_rest.append(monitor.activity < self.rest_g)
        return events


class RecordingSink:
    """Keeps a light copy of each reading row of a decided batch, and nothing else."""

    def __init__(self, series: dict[str, PatientSeries]) -> None:
        self.series = series

    def write(self, batch) -> None:  # noqa: ANN001 - a WriteBatch
        series = self.series
        for row in batch.readings:
            s = series.get(row.patient_id)
            if s is None:
                s = series[row.patient_id] = PatientSeries(row.patient_id)
            flags = row.flags
            trusted = not (flags and UNTRUSTED_OPTICAL.intersection(flags.split(",")))
            s.readings.append((row.t, row.hr, row.spo2, row.rr, row.temp, row.sbp, row.dbp, row.news2, trusted))


@dataclass(slots=True)
class ReplayResult:
    plan: CohortPlan
    pipeline: Pipeline
    series: dict[str, PatientSeries]
    end_t: float


def make_plan(seed: int, patients: int, days: float) -> CohortPlan:
    return plan_cohort(patients, seed, START_T, days * 86400.0)


def replay(plan: CohortPlan, stage: ModelStage | None = None, *, keep_readings: bool = True) -> ReplayResult:
    """Run the plan's whole stream through a Pipeline, one batch per simulated minute."""
    series: dict[str, PatientSeries] = {}
    for p in plan.patients:
        series[p.patient_id] = PatientSeries(p.patient_id, p.traits.spo2_scale)
    recorder = RecordingSink(series) if keep_readings else None
    pipeline = Pipeline(Registry(Roster.model_validate(plan.roster())), Metrics(), NOTHING_STORED,
                        model_stage=FeatureRecorder(series, stage))
    end_t = plan.start_t + plan.duration_s
    fleet = Fleet(plan, RATE_HZ, BATCH_SAMPLES)
    window: list[Message] = []
    current = None
    for out in fleet.batches_until(end_t):
        if not out.topic.endswith("/vitals"):
            continue
        slot = math.floor((out.sim_t - plan.start_t) / WINDOW_S)
        if current is not None and slot != current and window:
            decision = pipeline.process(window, now=plan.start_t + (current + 1) * WINDOW_S)
            if recorder is not None:
                recorder.write(decision.batch)
            window = []
        current = slot
        window.append(Message(out.topic, out.payload, out.sim_t))
    if window:
        decision = pipeline.process(window, now=end_t)
        if recorder is not None:
            recorder.write(decision.batch)
    return ReplayResult(plan, pipeline, series, end_t)


def risk_labels(s: PatientSeries, events: Sequence, horizon_s: float = 3600.0, news2_high: int = 5,
                news2_hold_s: float = 300.0) -> list[int]:
    """1 when, within the next `horizon_s`, NEWS2 reaches `news2_high` at rest (held for
    `news2_hold_s`, as a nurse would confirm it) or a clinical event begins or is under way."""
    n = len(s.t)
    # Times at which a rest NEWS2 >= high has held for news2_hold_s.
    confirmed: list[float] = []
    since = None
    for t, score, rest in zip(s.t, s.news2, s.at_rest):
        if score >= news2_high and rest:
            if since is None:
                since = t
            if t - since >= news2_hold_s:
                confirmed.append(t)
        elif score < news2_high:
            since = None
    clinical = [(e.onset_t, e.end_t) for e in events if e.expects == "clinical"]
    labels = [0] * n
    j = 0
    for i, t in enumerate(s.t):
        while j < len(confirmed) and confirmed[j] < t:
            j += 1
        if j < len(confirmed) and confirmed[j] <= t + horizon_s:
            labels[i] = 1
            continue
        for onset, end in clinical:
            if onset <= t + horizon_s and end >= t:
                labels[i] = 1
                break
    return labels


def stable_mask(s: PatientSeries, events: Sequence, margin_s: float = 3600.0) -> list[bool]:
    """Scoring points far from every injected event (clinical or not): 'usual' for this patient."""
    spans = [(e.onset_t - margin_s, e.end_t + margin_s) for e in events]
    return [not any(a <= t <= b for a, b in spans) for t in s.t]
