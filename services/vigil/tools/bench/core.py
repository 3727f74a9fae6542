"""`vigil bench core`: clinical-core throughput on one core, and the memory of patient state."""

from __future__ import annotations

import gc
import time
import tracemalloc

from vigil.shell.contract.device import VitalsBatch
from vigil.shell.contract.validation import to_reading
from vigil.core.patient import PatientMonitor
from vigil.core.reading import Reading
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet


def simulated_readings(patients: int, readings: int, seed: int) -> list[Reading]:
    """Readings from the simulator (all scenarios), converted once, outside the timed part."""
    rate = 1 / 15
    sim_s = readings / patients / rate
    start = 1_800_000_000.0
    plan = plan_cohort(patients, seed, start, sim_s)
    out: list[Reading] = []
    for message in Fleet(plan, rate, batch_size=10).batches_until(start + sim_s):
        if message.topic.endswith("/vitals"):
            batch = VitalsBatch.model_validate_json(message.payload)
            patient_id = "pt-" + batch.device_id.split("-")[1]
            out.extend(to_reading(s, batch.device_id, patient_id) for s in batch.samples)
    return out[:readings]


def bench_core(patients: int = 200, readings: int = 200_000, seed: int = 11, repeats: int = 3) -> dict[str, object]:
    stream = simulated_readings(patients, readings, seed)
    best = float("inf")
    events = 0
    for _ in range(repeats):
        monitors = {f"pt-{i + 1:04d}": PatientMonitor(f"pt-{i + 1:04d}") for i in range(patients)}
        gc.collect()
        gc.disable()
        started = time.perf_counter()
        for reading in stream:
            events += len(monitors[reading.patient_id].observe(reading).events)
        elapsed = time.perf_counter() - started
        gc.enable()
        best = min(best, elapsed)

    # Memory of one patient's state after an hour of readings, measured on 1,000 patients.
    sample = [r for r in stream if r.patient_id == stream[0].patient_id][:240]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = []
    for i in range(1000):
        monitor = PatientMonitor(f"m-{i}")
        for r in sample:
            monitor.observe(r)
        kept.append(monitor)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_patient = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(kept)
    return {
        "bench": "core",
        "patients": patients,
        "readings": len(stream),
        "best_of": repeats,
        "seconds": round(best, 3),
        "readings_per_s": round(len(stream) / best),
        "us_per_reading": round(best / len(stream) * 1e6, 2),
        "events": events // repeats,
        "state_bytes_per_patient": round(per_patient),
        "state_mb_for_10k_patients": round(per_patient * 10_000 / 1e6, 1),
    }
