"""How well alerts match injected events: sensitivity, false alerts, detection delay.

An event expecting a clinical alert is detected by any clinical alert for the same patient
raised between its onset and `grace_s` after its end. A clinical alert outside every such
window is a false alert. Technical events (device offline, low battery) are matched to alerts
of their own kind and reported apart. Events observed for less than `min_observed_s` (cut off
by the end of the run) are not scored.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    patient_id: str
    kind: str
    category: str
    raised_t: float


@dataclass(frozen=True, slots=True)
class TruthEvent:
    patient_id: str
    scenario: str
    expects: str
    onset_t: float
    end_t: float

    @staticmethod
    def from_dict(d: Mapping[str, object]) -> "TruthEvent":
        return TruthEvent(str(d["patient_id"]), str(d["scenario"]), str(d["expects"]),
                          float(d["onset_t"]), float(d["end_t"]))  # type: ignore[arg-type]


@dataclass(slots=True)
class DetectionSummary:
    clinical_events: int = 0
    detected: int = 0
    sensitivity: float | None = None
    false_alerts: int = 0
    false_alerts_per_patient_day: float = 0.0
    median_detection_delay_s: float | None = None
    delays_s: list[float] = field(default_factory=list)
    technical_events: int = 0
    technical_detected: int = 0
    unscored_events: int = 0
    by_scenario: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "clinical_events": self.clinical_events,
            "detected": self.detected,
            "sensitivity": self.sensitivity,
            "false_alerts": self.false_alerts,
            "false_alerts_per_patient_day": round(self.false_alerts_per_patient_day, 3),
            "median_detection_delay_s": self.median_detection_delay_s,
            "technical_events": self.technical_events,
            "technical_detected": self.technical_detected,
            "unscored_events": self.unscored_events,
            "by_scenario": self.by_scenario,
        }


def score_detection(
    truth: Iterable[TruthEvent],
    alerts: Iterable[RaisedAlert],
    *,
    patient_days: float,
    run_end_t: float,
    grace_s: float = 1800.0,
    min_observed_s: float = 1800.0,
) -> DetectionSummary:
    events = list(truth)
    by_patient: dict[str, list[RaisedAlert]] = {}
    for alert in alerts:
        by_patient.setdefault(alert.patient_id, []).append(alert)
    summary = DetectionSummary()
    clinical_windows: dict[str, list[tuple[float, float]]] = {}
    for event in events:
        if event.expects == "clinical":
            clinical_windows.setdefault(event.patient_id, []).append((event.onset_t, event.end_t + grace_s))
        if event.expects == "none":
            continue
        if min(event.end_t, run_end_t) - event.onset_t < min_observed_s:
            summary.unscored_events += 1
            continue
        stats = summary.by_scenario.setdefault(event.scenario, {"events": 0, "detected": 0})
        stats["events"] += 1
        window_end = event.end_t + grace_s
        if event.expects == "clinical":
            matches = [a.raised_t for a in by_patient.get(event.patient_id, ())
                       if a.category == "clinical" and event.onset_t <= a.raised_t <= window_end]
            summary.clinical_events += 1
            if matches:
                summary.detected += 1
                stats["detected"] += 1
                summary.delays_s.append(min(matches) - event.onset_t)
        else:
            matches = [a.raised_t for a in by_patient.get(event.patient_id, ())
                       if a.kind == event.expects and event.onset_t <= a.raised_t <= window_end]
            summary.technical_events += 1
            if matches:
                summary.technical_detected += 1
                stats["detected"] += 1
    for patient_id, alerts_of_patient in by_patient.items():
        windows = clinical_windows.get(patient_id, [])
        for alert in alerts_of_patient:
            if alert.category != "clinical":
                continue
            if not any(start <= alert.raised_t <= end for start, end in windows):
                summary.false_alerts += 1
    if summary.clinical_events:
        summary.sensitivity = round(summary.detected / summary.clinical_events, 4)
    if summary.delays_s:
        summary.median_detection_delay_s = round(statistics.median(summary.delays_s), 1)
    summary.false_alerts_per_patient_day = summary.false_alerts / patient_days if patient_days > 0 else 0.0
    return summary
