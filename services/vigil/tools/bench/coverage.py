"""`vigil bench coverage`: the issue 13 targets on the simulated clock (docs/coverage.md).

A cohort with the simulator's coverage faults dealt to a third of its devices runs through the
embedded pipeline, ticked every `tick_s` simulated seconds, over several seeds. Reported: per
cause, the time from the fault's onset to its technical alert (p50, max) and from its end to the
alert's close; and the patient-minutes not monitored without an open technical alert (target 0).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from vigil.shell.desk.desk import AlertChange
from vigil.shell.mqtt.message import Message
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.coverage_report import CoverageReport
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil_simulators.cohort import CohortPlan, parse_scenarios, plan_cohort
from vigil_simulators.fleet import Fleet

START = 1_800_000_000.0
# The technical alert each coverage fault must raise: (kind, values["cause"] or None).
EXPECTED: dict[str, tuple[str, str | None]] = {
    "clock_reset": ("not_monitored", "clock"), "renamed_field": ("not_monitored", "rejected"),
    "wrong_unit": ("not_monitored", "rejected"), "no_spo2": ("not_monitored", "vitals_missing"),
    "off_wrist": ("poor_signal", None), "device_offline": ("device_offline", "offline"),
}


@dataclass(slots=True)
class CoverageRun:
    """One simulated run: the plan, every alert change, and the coverage picture per tick."""

    plan: CohortPlan
    changes: list[AlertChange] = field(default_factory=list)
    uncovered: list[tuple[float, list[str]]] = field(default_factory=list)
    report: CoverageReport = field(default_factory=CoverageReport)


def simulate(patients: int, seed: int, hours: float, tick_s: float = 1.0, fraction: float = 1 / 3) -> CoverageRun:
    """A cohort with coverage faults on `fraction` of its devices, through the pipeline."""
    plan = plan_cohort(patients, seed, START, hours * 3600, parse_scenarios("coverage"), event_fraction=fraction)
    registry = Registry(Roster.model_validate(plan.roster()))
    pipeline = Pipeline(registry, Metrics(), NOTHING_STORED)
    fleet = Fleet(plan, 1 / 15, 4)
    run = CoverageRun(plan)
    pipeline.process([Message(o.topic, o.payload, START) for o in fleet.greetings()], START)
    now, end = START, START + hours * 3600
    while now < end:
        now += tick_s
        out = [Message(o.topic, o.payload, now) for o in fleet.batches_until(now)]
        if out:
            run.changes += pipeline.process(out, now).alert_changes
        for profile in registry.patients():
            pipeline.patients.get(profile.patient_id)
        run.changes += pipeline.tick(now).alert_changes
        body = run.report.update(pipeline.patients.in_memory(), now)
        if body["uncovered_count"]:
            run.uncovered.append((now, body["uncovered"]))
    return run


def fault_delays(run: CoverageRun) -> tuple[dict[str, list[float]], dict[str, list[float]], list[str]]:
    """Per fault scenario: onset to alert, end to close (simulated s); and the faults never alerted."""
    raised: dict[str, list[float]] = {}
    closed: dict[str, list[float]] = {}
    missed: list[str] = []
    for event in run.plan.truth:
        if event.scenario not in EXPECTED:
            continue
        kind, cause = EXPECTED[event.scenario]
        mine = [c for c in run.changes if c.alert.patient_id == event.patient_id and c.alert.kind == kind]
        up = [c for c in mine if c.event == "raised" and event.onset_t <= c.t <= event.end_t + 120
              and (cause is None or c.alert.values.get("cause") == cause)]
        if not up:
            missed.append(f"{event.scenario}:{event.patient_id}")
            continue
        raised.setdefault(event.scenario, []).append(up[0].t - event.onset_t)
        down = [c for c in mine if c.event == "cleared" and c.t >= event.end_t]
        if down:
            closed.setdefault(event.scenario, []).append(down[0].t - event.end_t)
    return raised, closed, missed


def bench_coverage(patients: int = 30, seeds: int = 5, hours: float = 6.0) -> dict[str, Any]:
    started = time.perf_counter()
    raised: dict[str, list[float]] = {}
    closed: dict[str, list[float]] = {}
    missed: list[str] = []
    uncovered_minutes = monitored_share = 0.0
    for seed in range(seeds):
        run = simulate(patients, 100 + seed, hours)
        up, down, lost = fault_delays(run)
        for name, values in up.items():
            raised.setdefault(name, []).extend(values)
        for name, values in down.items():
            closed.setdefault(name, []).extend(values)
        missed += lost
        tally = run.report.tally()
        uncovered_minutes += tally["uncovered_minutes"]
        monitored_share += tally["monitored_share"] / seeds

    def stats(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
        return {k: {"n": len(v), "p50_s": round(statistics.median(v), 1), "max_s": round(max(v), 1)}
                for k, v in sorted(values.items())}

    return {"patients": patients, "seeds": seeds, "simulated_hours": hours, "faulty_share": round(1 / 3, 3),
            "fault_to_alert": stats(raised), "recovery_to_close": stats(closed), "faults_missed": missed,
            "uncovered_patient_minutes": round(uncovered_minutes, 1), "monitored_share": round(monitored_share, 4),
            "wall_s": round(time.perf_counter() - started, 1)}
