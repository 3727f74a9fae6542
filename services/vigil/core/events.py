"""What the core records happened. Shells decide where each event goes (store, topic, notifier)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
Category = Literal["clinical", "technical"]


def stable_alert_id(patient_id: str, kind: str, onset_t: float) -> str:
    """Same patient, kind and onset always give the same id, so a replay cannot duplicate it."""
    digest = hashlib.sha1(f"{patient_id}|{kind}|{onset_t:.3f}".encode()).hexdigest()
    return f"al-{digest[:20]}"


@dataclass(slots=True)
class Alert:
    """An open or closed alert, with the numbers and the rule that caused it."""

    alert_id: str
    patient_id: str
    kind: str
    category: Category
    severity: Severity
    rule: str
    values: dict[str, float | int | str | bool]
    onset_t: float
    raised_t: float
    news2: dict[str, object] | None = None
    contributors: list[dict[str, object]] = field(default_factory=list)
    model_version: str | None = None
    cleared_t: float | None = None
    # The patient's personal baseline (mean) and trend (change per hour) of each vital at the
    # moment the alert was raised: the explanation's context, not a trigger.
    baselines: dict[str, float] = field(default_factory=dict)
    trends: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "alert_id": self.alert_id,
            "patient_id": self.patient_id,
            "kind": self.kind,
            "category": self.category,
            "severity": self.severity,
            "rule": self.rule,
            "values": dict(self.values),
            "onset_t": self.onset_t,
            "raised_t": self.raised_t,
            "news2": self.news2,
            "contributors": list(self.contributors),
            "model_version": self.model_version,
            "cleared_t": self.cleared_t,
            "baselines": dict(self.baselines),
            "trends": dict(self.trends),
        }


@dataclass(frozen=True, slots=True)
class AlertRaised:
    alert: Alert


@dataclass(frozen=True, slots=True)
class AlertSeverityChanged:
    alert: Alert
    previous: Severity
    t: float


@dataclass(frozen=True, slots=True)
class AlertCleared:
    alert: Alert
    t: float


@dataclass(frozen=True, slots=True)
class ReadingRejected:
    """A reading refused by the core's stateful checks (duplicate or out-of-order sequence)."""

    patient_id: str
    device_id: str
    seq: int
    t: float
    reason: str
    detail: str


Event = AlertRaised | AlertSeverityChanged | AlertCleared | ReadingRejected
