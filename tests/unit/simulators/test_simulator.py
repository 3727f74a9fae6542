"""The simulator is deterministic, plausible, and writes the ground truth it injected."""

import json

from vigil.shell.contract.device import VitalsBatch
from vigil_simulators.cohort import parse_scenarios, plan_cohort
from vigil_simulators.fleet import Fleet

START = 1_800_000_000.0


def messages(seed: int, scenarios: str = "all", bad: float = 0.0):
    plan = plan_cohort(6, seed, START, 4 * 3600, parse_scenarios(scenarios))
    fleet = Fleet(plan, rate_hz=1 / 30, batch_size=4, bad_payload_rate=bad)
    return plan, fleet, [(m.topic, m.payload) for m in fleet.batches_until(START + 4 * 3600)]


def test_same_seed_same_bytes_other_seed_other_bytes():
    _, _, first = messages(3, bad=0.05)
    _, _, again = messages(3, bad=0.05)
    _, _, other = messages(4, bad=0.05)
    assert first == again
    assert first != other


def test_every_good_batch_meets_the_contract_and_is_plausible():
    _, _, out = messages(5)
    hrs = []
    for topic, payload in out:
        if topic.endswith("/vitals"):
            batch = VitalsBatch.model_validate_json(payload)
            hrs += [s.hr_bpm for s in batch.samples if s.hr_bpm is not None]
    assert len(hrs) > 1000
    assert 25 <= min(hrs) and max(hrs) <= 250


def test_ground_truth_lists_injected_events():
    plan, _, _ = messages(9)
    truth = [e.as_dict() for e in plan.truth]
    assert truth and all(e["onset_t"] < e["end_t"] for e in truth)
    assert truth[0]["scenario"] == "hypoxaemia" and truth[0]["onset_t"] == START + 600
    json.dumps(truth)


def test_calm_cohort_has_no_events():
    plan, _, _ = messages(9, "none")
    assert plan.truth == []


def test_fault_injection_is_counted():
    _, fleet, out = messages(2, bad=0.2)
    assert sum(fleet.counts.faults.values()) > 10
    assert any(topic.startswith("vigil/v1/devices/unenrolled-") for topic, _ in out) or "unknown_device" not in fleet.counts.faults
