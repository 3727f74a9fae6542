"""`vigil bench model`: the cost of the learned models inside the pipeline, per reading.

Simulated MQTT payloads (all scenarios) are made once, outside the timed part, then processed
by the real Pipeline (contract checks, core, model stage) with a store that discards rows, in
batches of one simulated minute (every patient's message of that minute in one batch). Three
figures per reading: total processing time, the model stage (features + ONNX + alert policy),
and ONNX inference alone. The same messages are also processed without the model stage.
"""

from __future__ import annotations

import gc
import math
import time

from vigil.shell.pipeline.pipeline import NOTHING_STORED, Message, Pipeline
from vigil_models.replay import BATCH_SAMPLES, RATE_HZ, START_T, WINDOW_S
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil.shell.scoring import OnnxScoringStage, load_model_set
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet


class _TimedModels:
    """Forwards to a ModelSet and adds up the time spent in its ONNX calls."""

    def __init__(self, models) -> None:  # noqa: ANN001
        self._models = models
        self.seconds = 0.0
        self.rows = 0

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._models, name)

    def score(self, features):  # noqa: ANN001, ANN201
        started = time.perf_counter()
        out = self._models.score(features)
        self.seconds += time.perf_counter() - started
        self.rows += len(features)
        return out


class _TimedStage:
    def __init__(self, inner: OnnxScoringStage) -> None:
        self.inner = inner
        self.seconds = 0.0

    def run(self, monitors):  # noqa: ANN001, ANN201
        started = time.perf_counter()
        out = self.inner.run(monitors)
        self.seconds += time.perf_counter() - started
        return out


def _batches(patients: int, hours: float, seed: int, samples_per_message: int) -> tuple[list[list[Message]], dict]:
    plan = plan_cohort(patients, seed, START_T, hours * 3600)
    fleet = Fleet(plan, RATE_HZ, samples_per_message)
    batches: list[list[Message]] = []
    current, window = None, []
    for out in fleet.batches_until(START_T + hours * 3600):
        if not out.topic.endswith("/vitals"):
            continue
        slot = math.floor((out.sim_t - START_T) / WINDOW_S)
        if current is not None and slot != current and window:
            batches.append(window)
            window = []
        current = slot
        window.append(Message(out.topic, out.payload, out.sim_t))
    if window:
        batches.append(window)
    return batches, plan.roster()


def _run(batches: list[list[Message]], roster: dict, stage) -> tuple[float, int]:  # noqa: ANN001
    pipeline = Pipeline(Registry(Roster.model_validate(roster)), Metrics(), NOTHING_STORED, model_stage=stage)
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    for batch in batches:
        pipeline.process(batch)
    elapsed = time.perf_counter() - started
    gc.enable()
    return elapsed, pipeline.totals.readings


def bench_model(patients: int = 200, hours: float = 6.0, seed: int = 11,
                samples_per_message: int = BATCH_SAMPLES) -> dict[str, object]:
    batches, roster = _batches(patients, hours, seed, samples_per_message)
    models = load_model_set()
    plain_s, readings = _run(batches, roster, None)
    timed_models = _TimedModels(models)
    stage = _TimedStage(OnnxScoringStage(timed_models))  # type: ignore[arg-type]
    total_s, readings_m = _run(batches, roster, stage)
    us = 1e6 / readings_m
    return {
        "bench": "model",
        "model_version": models.version,
        "patients": patients,
        "simulated_hours": hours,
        "samples_per_message": samples_per_message,
        "batches": len(batches),
        "readings": readings_m,
        "rows_scored": timed_models.rows,
        "onnx_calls": stage.inner.calls,
        "us_per_reading_without_models": round(plain_s / readings * 1e6, 2),
        "us_per_reading_with_models": round(total_s * us, 2),
        "model_stage_us_per_reading": round(stage.seconds * us, 2),
        "onnx_us_per_reading": round(timed_models.seconds * us, 3),
        "onnx_us_per_row": round(timed_models.seconds / max(timed_models.rows, 1) * 1e6, 2),
        "onnx_share_of_processing": round(timed_models.seconds / total_s, 4),
        "model_stage_share_of_processing": round(stage.seconds / total_s, 4),
    }
