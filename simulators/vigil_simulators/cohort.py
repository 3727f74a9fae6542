"""Plan a simulated cohort: who the patients are, which device each wears, what happens when.

The plan is pure data from a seed: the same seed gives the same patients, the same events and
(through each wearable's own random stream) the same samples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from vigil_simulators.physiology import PatientTraits, SimulatedWearable
from vigil_simulators.scenarios import CLINICAL_SCENARIOS, COVERAGE_SCENARIOS, SCENARIOS, ScheduledEvent

# Order in which scenarios are dealt out: acute, quickly visible ones first, so even a short
# demo shows an alert within its first minute.
DEAL_ORDER = (
    "hypoxaemia", "fast_irregular_rhythm", "artefact_burst", "bradycardia", "hypertensive_crisis",
    "sepsis", "device_offline", "fever", "low_battery",
)
MIN_GAP_BETWEEN_EVENTS_S = 4 * 3600.0


def parse_scenarios(spec: str | None) -> tuple[str, ...]:
    """'all', 'none', 'clinical', 'coverage' (the faults that blind Vigil: docs/coverage.md), or a
    comma-separated list of scenario names."""
    if spec is None or spec == "all":
        return DEAL_ORDER
    if spec == "none":
        return ()
    if spec == "coverage":
        return COVERAGE_SCENARIOS
    if spec == "clinical":
        return tuple(name for name in DEAL_ORDER if name in CLINICAL_SCENARIOS)
    names = tuple(part.strip() for part in spec.split(",") if part.strip())
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(SCENARIOS)}")
    return names


@dataclass(slots=True)
class SimulatedPatient:
    patient_id: str
    device_id: str
    traits: PatientTraits
    events: list[ScheduledEvent] = field(default_factory=list)


@dataclass(slots=True)
class CohortPlan:
    seed: int
    start_t: float
    duration_s: float
    patients: list[SimulatedPatient]

    @property
    def truth(self) -> list[ScheduledEvent]:
        return sorted((e for p in self.patients for e in p.events), key=lambda e: e.onset_t)

    def wearables(self) -> list[SimulatedWearable]:
        return [
            SimulatedWearable(p.patient_id, p.device_id, p.traits, p.events,
                              random.Random(f"{self.seed}:{p.patient_id}:stream"), self.start_t)
            for p in self.patients
        ]

    def roster(self) -> dict[str, object]:
        """The registry document (same shape as the YAML roster file) for these patients."""
        patients = []
        for i, p in enumerate(self.patients):
            clinical: dict[str, object] = {"spo2_scale": p.traits.spo2_scale, "on_oxygen": p.traits.on_oxygen}
            if p.traits.hr < 60:
                clinical["usual_ranges"] = {"hr": {"low": round(p.traits.hr - 8), "high": round(p.traits.hr + 30)}}
            patients.append({
                "patient_id": p.patient_id,
                "display_name": f"Simulated patient {i + 1}",
                "language": "en",
                "devices": [{"device_id": p.device_id, "model": "Vigil SimBand 1"}],
                "clinical": clinical,
                "care_team": [
                    {"name": "Dr A. Okafor", "role": "physician", "email": "a.okafor@example.org", "phone": "+441632960001"},
                    {"name": "Ward nurse", "role": "nurse", "email": "virtual-ward@example.org", "phone": "+441632960002"},
                ],
                "notifications": {"channels": ["app", "sms"], "quiet_hours": {"start": "22:00", "end": "07:00"}},
            })
        return {"version": 1, "patients": patients}


def plan_cohort(
    patients: int,
    seed: int,
    start_t: float,
    duration_s: float,
    scenarios: tuple[str, ...] = DEAL_ORDER,
    event_fraction: float = 0.7,
    first_onset_s: float = 10 * 60,
    id_prefix: str = "",
) -> CohortPlan:
    """Deal scenarios to a share of the patients, at random onsets after `first_onset_s`."""
    rng = random.Random(f"{seed}:cohort")
    people = [
        SimulatedPatient(f"{id_prefix}pt-{i + 1:04d}", f"{id_prefix}wr-{i + 1:04d}",
                         PatientTraits.draw(random.Random(f"{seed}:traits:{i}")))
        for i in range(patients)
    ]
    plan = CohortPlan(seed, start_t, duration_s, people)
    if not scenarios or patients == 0:
        return plan
    order = list(range(patients))
    rng.shuffle(order)
    with_events = order[: max(1, round(patients * event_fraction))]
    end_of_run = start_t + duration_s
    spread = max(0.0, min(duration_s * 0.5, 6 * 3600.0))
    deal = 0
    for rank, index in enumerate(with_events):
        person = people[index]
        cursor = start_t + first_onset_s + (0.0 if rank == 0 else rng.uniform(0, spread))
        while cursor < end_of_run - 5 * 60:
            name = scenarios[deal % len(scenarios)]
            deal += 1
            low, high = SCENARIOS[name].duration_s
            end = min(cursor + rng.uniform(low, high), end_of_run)
            person.events.append(ScheduledEvent(person.patient_id, person.device_id, name, cursor, end))
            cursor = end + MIN_GAP_BETWEEN_EVENTS_S + rng.uniform(0, 6 * 3600.0)
    return plan
