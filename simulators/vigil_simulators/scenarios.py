"""Injected clinical and technical events, each a deterministic function of time since onset.

A scenario bends the patient's physiology (shifts to the mean of each vital), or changes how
the device behaves (silent, draining, shaking). `expects` says which alert a good monitor
raises for it: a clinical one, a technical one (naming the kind), or none at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Expectation = Literal["clinical", "device_offline", "low_battery", "not_monitored", "poor_signal", "none"]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    expects: Expectation
    duration_s: tuple[float, float]  # drawn uniformly
    ramp_s: float  # time to full effect
    shifts: dict[str, float]  # added to each vital's mean at full effect
    hr_irregularity_bpm: float = 0.0
    silent: bool = False  # the device publishes nothing
    drains_battery: bool = False
    artefact: bool = False
    cuff_every_s: float | None = None  # extra cuff readings while it lasts
    acvpu_at_full: str | None = None
    fault: str | None = None  # how the device's output goes wrong (coverage faults, issue 13)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "sepsis", "gradual sepsis-like deterioration: fever, fast heart and breathing, falling pressure",
            "clinical", (3 * 3600, 5 * 3600), ramp_s=2.5 * 3600,
            shifts={"hr": 38, "rr": 12, "temp": 2.1, "sbp": -38, "dbp": -18, "spo2": -5},
            cuff_every_s=30 * 60, acvpu_at_full="C",
        ),
        Scenario(
            "hypoxaemia", "acute fall in oxygen saturation with faster breathing",
            "clinical", (30 * 60, 60 * 60), ramp_s=5 * 60, shifts={"spo2": -12, "rr": 8, "hr": 18},
        ),
        Scenario(
            "fast_irregular_rhythm", "fast irregular heart rhythm (like atrial fibrillation with a fast rate)",
            "clinical", (30 * 60, 90 * 60), ramp_s=60, shifts={"hr": 72}, hr_irregularity_bpm=14,
        ),
        Scenario(
            "bradycardia", "slow heart rate", "clinical", (30 * 60, 90 * 60), ramp_s=3 * 60, shifts={"hr": -38},
        ),
        Scenario(
            "hypertensive_crisis", "very high blood pressure on repeat cuff readings",
            "clinical", (60 * 60, 120 * 60), ramp_s=10 * 60, shifts={"sbp": 80, "dbp": 48, "hr": 8},
            cuff_every_s=10 * 60,
        ),
        Scenario(
            "fever", "rising temperature with a faster heart rate",
            "clinical", (2 * 3600, 4 * 3600), ramp_s=30 * 60, shifts={"temp": 2.3, "hr": 22, "rr": 3},
        ),
        Scenario(
            "device_offline", "the device stops sending (out of range, switched off)",
            "device_offline", (30 * 60, 60 * 60), ramp_s=0, shifts={}, silent=True,
        ),
        Scenario(
            "low_battery", "the battery runs down fast until the device is charged",
            "low_battery", (45 * 60, 60 * 60), ramp_s=0, shifts={}, drains_battery=True,
        ),
        # Coverage faults (issue 13): the patient is fine, Vigil cannot see them; each must become
        # a technical alert naming the cause (docs/coverage.md). Not in "all": `--scenarios coverage`.
        Scenario(
            "clock_reset", "the device's clock resets to 1970 after a battery change: every sample refused",
            "not_monitored", (30 * 60, 60 * 60), ramp_s=0, shifts={}, fault="clock_reset",
        ),
        Scenario(
            "renamed_field", "a firmware update renames hr_bpm to heart_rate: every payload refused",
            "not_monitored", (30 * 60, 60 * 60), ramp_s=0, shifts={}, fault="renamed_field",
        ),
        Scenario(
            "wrong_unit", "a firmware update sends temperature in Fahrenheit: every sample implausible",
            "not_monitored", (30 * 60, 60 * 60), ramp_s=0, shifts={}, fault="wrong_unit",
        ),
        Scenario(
            "no_spo2", "the oximeter stops reporting SpO2; heart rate still arrives",
            "not_monitored", (40 * 60, 60 * 60), ramp_s=0, shifts={}, fault="no_spo2",
        ),
        Scenario(
            "off_wrist", "the wearable sits loose, off the skin, for a long time",
            "poor_signal", (40 * 60, 60 * 60), ramp_s=0, shifts={}, fault="off_wrist",
        ),
        Scenario(
            "stray_sample", "one stray test sample with a huge seq and a time ahead, then a slow heart rate",
            "clinical", (30 * 60, 90 * 60), ramp_s=3 * 60, shifts={"hr": -38}, fault="stray_sample",
        ),
        Scenario(
            "artefact_burst", "minutes of heavy movement that scramble the optical sensor",
            "none", (3 * 60, 8 * 60), ramp_s=0, shifts={}, artefact=True,
        ),
    )
}
CLINICAL_SCENARIOS = tuple(name for name, s in SCENARIOS.items() if s.expects == "clinical" and s.fault is None)
COVERAGE_SCENARIOS = tuple(name for name, s in SCENARIOS.items() if s.fault is not None) + ("device_offline",)


def effect(scenario: Scenario, elapsed_s: float) -> float:
    """Fraction of full effect, 0..1, at a time since onset (smooth ramp, then plateau)."""
    if elapsed_s <= 0:
        return 0.0
    if scenario.ramp_s <= 0 or elapsed_s >= scenario.ramp_s:
        return 1.0
    x = elapsed_s / scenario.ramp_s
    return x * x * (3 - 2 * x)


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    """One injected event in a patient's timeline: the ground truth that detection is scored on."""

    patient_id: str
    device_id: str
    scenario: str
    onset_t: float
    end_t: float

    @property
    def expects(self) -> Expectation:
        return SCENARIOS[self.scenario].expects

    def as_dict(self) -> dict[str, object]:
        return {
            "patient_id": self.patient_id,
            "device_id": self.device_id,
            "scenario": self.scenario,
            "expects": self.expects,
            "onset_t": self.onset_t,
            "end_t": self.end_t,
        }
