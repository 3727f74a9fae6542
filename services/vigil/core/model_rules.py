"""Alert rules on the learned models' scores: `anomaly` and `rising_risk`.

The models run in a shell (vigil.shell.scoring, onnxruntime); what they say comes back here as plain
floats, and from here on a model score is treated exactly like a vital sign: a rule with a
trigger and a looser clear threshold, then the same policy as every other alert (persistence,
hysteresis, one open alert per kind, suppression while the signal is untrusted). The alert
names the features that drove it and the model version that scored it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.core.events import Severity
from vigil.core.rules import ACTIVE, BETWEEN, CLEAR, UNKNOWN, Finding, Outcome, RuleSpec

ANOMALY = "anomaly"
RISING_RISK = "rising_risk"


def _scored_elsewhere(*_: object) -> Outcome:  # pragma: no cover - never called
    raise RuntimeError("model rules are stepped by PatientMonitor.apply_model_scores, not by observe")


# Scores arrive once per processed batch (about once a minute per patient), so persistence is
# counted in scores: several distinct scores over several minutes before anything fires.
MODEL_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(ANOMALY, "clinical", _scored_elsewhere, persist_s=600, min_evidence=5, clear_s=900, clear_min_evidence=5),
    RuleSpec(RISING_RISK, "clinical", _scored_elsewhere, persist_s=300, min_evidence=4, clear_s=900, clear_min_evidence=5),
)
MODEL_RULE_KINDS: tuple[str, ...] = tuple(spec.kind for spec in MODEL_RULES)


@dataclass(frozen=True, slots=True)
class ModelThresholds:
    """Where the model scores trigger and clear. Tuned at training time on training seeds only,
    and shipped in the model metadata; these defaults match the committed artifacts."""

    # Anomaly score: 1.0 is the 99.9th percentile of scores on stable (event-free) training windows.
    anomaly_high: float = 1.0
    anomaly_clear: float = 0.6
    # Deterioration risk: calibrated probability of NEWS2 >= 5 or a clinical event within the hour.
    risk_high: float = 0.5
    risk_critical: float = 0.85
    risk_clear: float = 0.25

    @staticmethod
    def from_dict(d: dict[str, object]) -> "ModelThresholds":
        known = {k: float(v) for k, v in d.items() if k in ModelThresholds.__dataclass_fields__}  # type: ignore[arg-type]
        return ModelThresholds(**known)

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


DEFAULT_MODEL_THRESHOLDS = ModelThresholds()


@dataclass(frozen=True, slots=True)
class ModelScores:
    """What the models said about one patient at time t. None: that model did not score."""

    t: float
    anomaly: float | None
    risk: float | None
    model_version: str
    contributors: tuple[dict[str, object], ...] = field(default=())


def anomaly_outcome(score: float | None, trusted: bool, t: float, th: ModelThresholds) -> Outcome:
    if score is None or not trusted:
        return UNKNOWN, 0.0, None
    if score >= th.anomaly_high:
        severity: Severity = "medium"
        rule = f"pattern unusual for this patient (anomaly score >= {th.anomaly_high:g}, the 99.9th centile of their stable periods)"
        return ACTIVE, t, Finding(severity, {"anomaly_score": round(score, 2)}, rule)
    return (CLEAR if score <= th.anomaly_clear else BETWEEN), t, None


def risk_outcome(risk: float | None, trusted: bool, t: float, th: ModelThresholds) -> Outcome:
    if risk is None or not trusted:
        return UNKNOWN, 0.0, None
    if risk >= th.risk_high:
        severity: Severity = "high" if risk >= th.risk_critical else "medium"
        rule = f"deterioration risk >= {th.risk_high:.0%} (NEWS2 >= 5 or a clinical event within the hour)"
        return ACTIVE, t, Finding(severity, {"risk_pct": round(100 * risk)}, rule)
    return (CLEAR if risk <= th.risk_clear else BETWEEN), t, None
