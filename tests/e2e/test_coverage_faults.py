"""The fault-injection suite (issue 13): the simulator's coverage faults on a third of a cohort,
through the embedded pipeline on the simulated clock. Each fault becomes its technical alert
within its bound and clears after it ends, no patient is ever not monitored without an open
technical alert, and the stray sample does not hide a bradycardia. Times are simulated seconds."""

import pytest

from vigil.tools.bench.coverage import START, simulate

HOURS = 6
TICK_S = 10.0
PERIOD_S = 15.0 * 4  # a batch of 4 samples every minute
# Fault to technical alert, from its onset: the first refused batch (one period, plus the device's
# offset in it, up to one sample), then the bound (60 s, and a second refused batch), then a tick.
FLOOD_S = PERIOD_S + 15 + max(60, PERIOD_S) + TICK_S
BOUND_S = {"clock_reset": FLOOD_S, "renamed_field": FLOOD_S, "wrong_unit": FLOOD_S,
           "device_offline": 30 + TICK_S + PERIOD_S, "no_spo2": 15 * 60 + PERIOD_S + TICK_S,
           "off_wrist": 20 * 60 + PERIOD_S + TICK_S}
KIND = {"clock_reset": ("not_monitored", "clock"), "renamed_field": ("not_monitored", "rejected"),
        "wrong_unit": ("not_monitored", "rejected"), "no_spo2": ("not_monitored", "vitals_missing"),
        "off_wrist": ("poor_signal", None), "device_offline": ("device_offline", "offline")}


@pytest.fixture(scope="module")
def run():
    result = simulate(21, 13, HOURS, TICK_S)  # vigil bench coverage runs the same, over more seeds
    return result.plan, result.changes, result.uncovered, result.report


def test_every_fault_is_a_technical_alert_within_its_bound_and_clears_after_it(run):
    plan, changes, _, _ = run
    faults = [e for e in plan.truth if e.scenario in KIND]
    assert len({e.scenario for e in faults}) == len(KIND), "every cause injected"
    delays: dict[str, list[float]] = {}
    for event in faults:
        kind, cause = KIND[event.scenario]
        mine = [c for c in changes if c.alert.patient_id == event.patient_id and c.alert.kind == kind]
        raised = [c for c in mine if c.event == "raised" and event.onset_t <= c.t <= event.end_t + PERIOD_S]
        assert raised, (event.scenario, event.patient_id)
        first = raised[0]
        if cause is not None:
            assert first.alert.values["cause"] == cause, (event.scenario, first.alert.values)
        delay = first.t - event.onset_t
        assert delay <= BOUND_S[event.scenario], (event.scenario, delay)
        delays.setdefault(event.scenario, []).append(delay)
        closed = [c for c in mine if c.event == "cleared" and c.t >= event.end_t]
        if event.end_t < START + HOURS * 3600 - 3 * PERIOD_S:
            assert closed and closed[0].t - event.end_t <= 2 * PERIOD_S + TICK_S, (event.scenario, closed)
    print("fault to technical alert (s):", {k: (min(v), max(v)) for k, v in sorted(delays.items())})


def test_no_patient_is_ever_unmonitored_without_an_open_technical_alert(run):
    _, _, uncovered, report = run
    assert uncovered == []
    print("coverage:", report.tally())


def test_the_stray_sample_does_not_hide_the_bradycardia_that_follows(run):
    plan, changes, _, _ = run
    (stray,) = [e for e in plan.truth if e.scenario == "stray_sample"][:1] or [None]
    assert stray is not None
    assert any(c.event == "raised" and c.alert.kind == "bradycardia" and c.alert.patient_id == stray.patient_id
               and stray.onset_t <= c.t <= stray.end_t + 600 for c in changes)
