"""`vigil model evaluate`: the served models on held-out simulated patients, against baselines.

One run: a cohort from a seed never used in training is replayed through the real Pipeline with
the ONNX model stage in it. From that single run come
- the risk model's AUROC/AUPRC on every scoring point (label as in training), and the AUROC of
  NEWS2 and of a count of fixed-threshold breaches on the same points;
- the alerting built on the models (anomaly + rising_risk alerts, through the core's policy),
  the processor as a whole (rules + models), the rules alone, and two baselines computed on
  the same readings: NEWS2 alone (alert while NEWS2 >= 5) and fixed single-vital thresholds
  (alert while a trusted reading is past a population limit); both without persistence.

Lead time is measured against a clinical endpoint: the first reading with NEWS2 >= 5 during
the event. Positive means the alert came first. Events that never reach NEWS2 >= 5 have no
endpoint and are left out of the median (their detection delay from onset is reported apart).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.core.features import FEATURE_NAMES
from vigil.core.model_rules import MODEL_RULE_KINDS
from vigil.core.rules import DEFAULT_THRESHOLDS
from vigil_simulators.detection import RaisedAlert, TruthEvent, score_detection

GRACE_S = 1800.0


@dataclass(frozen=True, slots=True)
class Limit:
    column: int  # index in a reading tuple (t, hr, spo2, rr, temp, sbp, dbp, news2, trusted)
    low: float | None
    high: float | None
    optical: bool


def fixed_limits(spo2_scale: int) -> dict[str, Limit]:
    th = DEFAULT_THRESHOLDS
    spo2_low = th.spo2_low_scale2 if spo2_scale == 2 else th.spo2_low_scale1
    return {
        "hr": Limit(1, th.hr_low, th.hr_high_rest, True),
        "spo2": Limit(2, spo2_low, None, True),
        "rr": Limit(3, th.rr_low, th.rr_high, True),
        "temp": Limit(4, th.temp_low, th.temp_fever, False),
        "sbp": Limit(5, th.sbp_low, th.sbp_crisis, False),
        "dbp": Limit(6, None, th.dbp_crisis, False),
    }


def _past(value: float | None, limit: Limit) -> bool:
    if value is None:
        return False
    return (limit.low is not None and value <= limit.low) or (limit.high is not None and value >= limit.high)


def threshold_alerts(series) -> list[RaisedAlert]:  # noqa: ANN001 - PatientSeries
    """A classic monitor alarm: fires on the first trusted reading past a fixed limit, one open
    per vital, closes when a reading is back in range. No persistence, no personal baseline."""
    alerts = []
    for s in series.values():
        limits = fixed_limits(s.spo2_scale)
        open_ = {name: False for name in limits}
        for row in s.readings:
            for name, limit in limits.items():
                value = row[limit.column]
                if value is None or (limit.optical and not row[8]):
                    continue
                if _past(value, limit):
                    if not open_[name]:
                        open_[name] = True
                        alerts.append(RaisedAlert(s.patient_id, f"threshold_{name}", "clinical", row[0]))
                else:
                    open_[name] = False
    return alerts


def news2_alerts(series) -> list[RaisedAlert]:  # noqa: ANN001
    """NEWS2 alone: fires when a reading's NEWS2 reaches 5, closes when it falls below 5."""
    alerts = []
    for s in series.values():
        high = False
        for row in s.readings:
            score = row[7]
            if score is None:
                continue
            if score >= 5 and not high:
                alerts.append(RaisedAlert(s.patient_id, "news2_only", "clinical", row[0]))
            high = score >= 5
    return alerts


def threshold_breaches(X: np.ndarray, spo2_scale2: np.ndarray) -> np.ndarray:
    """How many fixed single-vital limits the current (smoothed) values are past: the
    threshold baseline's score for AUROC."""
    th = DEFAULT_THRESHOLDS
    col = {n: FEATURE_NAMES.index(n) for n in FEATURE_NAMES}
    present = {v: X[:, col[f"{v}_missing"]] < 0.5 for v in ("hr", "spo2", "rr", "temp", "sbp")}
    val = {v: X[:, col[f"{v}_value"]] for v in ("hr", "spo2", "rr", "temp", "sbp")}
    spo2_low = np.where(spo2_scale2 > 0.5, th.spo2_low_scale2, th.spo2_low_scale1)
    count = np.zeros(len(X))
    count += present["hr"] & ((val["hr"] >= th.hr_high_rest) | (val["hr"] <= th.hr_low))
    count += present["spo2"] & (val["spo2"] <= spo2_low)
    count += present["rr"] & ((val["rr"] >= th.rr_high) | (val["rr"] <= th.rr_low))
    count += present["temp"] & ((val["temp"] >= th.temp_fever) | (val["temp"] <= th.temp_low))
    count += present["sbp"] & ((val["sbp"] >= th.sbp_crisis) | (val["sbp"] <= th.sbp_low))
    return count


def endpoints(series, truth: list[TruthEvent]) -> dict[int, float]:  # noqa: ANN001
    """For each clinical event (by index in truth): the first reading with NEWS2 >= 5 in it."""
    out: dict[int, float] = {}
    for i, e in enumerate(truth):
        if e.expects != "clinical":
            continue
        s = series.get(e.patient_id)
        for row in (s.readings if s else ()):
            if e.onset_t <= row[0] <= e.end_t + GRACE_S and row[7] is not None and row[7] >= 5:
                out[i] = row[0]
                break
    return out


def alerting_figures(truth: list[TruthEvent], alerts: list[RaisedAlert], patient_days: float, end_t: float,
                     ends: dict[int, float]) -> dict[str, object]:
    detection = score_detection(truth, alerts, patient_days=patient_days, run_end_t=end_t)
    leads = []
    for i, e in enumerate(truth):
        if i not in ends or min(e.end_t, end_t) - e.onset_t < 1800.0:
            continue
        first = [a.raised_t for a in alerts if a.patient_id == e.patient_id and a.category == "clinical"
                 and e.onset_t <= a.raised_t <= e.end_t + GRACE_S]
        if first:
            leads.append(ends[i] - min(first))
    return {
        "sensitivity": detection.sensitivity,
        "false_alerts_per_patient_day": round(detection.false_alerts_per_patient_day, 3),
        "median_lead_time_s": round(statistics.median(leads), 1) if leads else None,
        "lead_time_events": len(leads),
        "median_detection_delay_s": detection.median_detection_delay_s,
        "alerts": len(alerts),
        "false_alerts": detection.false_alerts,
        "clinical_events": detection.clinical_events,
        "detected": detection.detected,
        "by_scenario": detection.by_scenario,
    }


def evaluate(seed: int, patients: int, days: float = 2.0, model_dir: Path | None = None,
             allow_training_seed: bool = False) -> dict[str, object]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from vigil_models.replay import make_plan, replay, risk_labels
    from vigil.shell.scoring import OnnxScoringStage, load_model_set

    models = load_model_set(model_dir)
    training = dict(models.metadata.get("training", {}))
    used = set(training.get("train_seeds", [])) | {training.get("calibration_seed")}
    if seed in used and not allow_training_seed:
        raise ValueError(f"seed {seed} was used to train model {models.version}; evaluate on a held-out seed")
    started = time.perf_counter()
    plan = make_plan(seed, patients, days)
    stage = OnnxScoringStage(models)
    result = replay(plan, stage)
    replay_s = time.perf_counter() - started
    truth = [TruthEvent.from_dict(e.as_dict()) for e in plan.truth]
    by_patient: dict[str, list] = {}
    for event in plan.truth:
        by_patient.setdefault(event.patient_id, []).append(event)

    X, y = [], []
    for p in plan.patients:
        s = result.series[p.patient_id]
        X.extend(s.features)
        y.extend(risk_labels(s, by_patient.get(p.patient_id, [])))
    Xa = np.asarray(X, dtype=np.float32)
    ya = np.asarray(y, dtype=int)
    _, risk = models.score(Xa)
    news2 = Xa[:, FEATURE_NAMES.index("news2_score")]
    breaches = threshold_breaches(Xa, Xa[:, FEATURE_NAMES.index("spo2_scale2")])

    patient_days = patients * days
    ends = endpoints(result.series, truth)
    raised = result.pipeline.totals.raised
    as_raised = [RaisedAlert(a.patient_id, a.kind, a.category, a.raised_t) for a in raised]
    model_alerts = [a for a in as_raised if a.kind in MODEL_RULE_KINDS]
    rule_alerts = [a for a in as_raised if a.kind not in MODEL_RULE_KINDS]
    models_fig = alerting_figures(truth, model_alerts, patient_days, result.end_t, ends)
    news2_fig = alerting_figures(truth, news2_alerts(result.series), patient_days, result.end_t, ends)
    threshold_fig = alerting_figures(truth, threshold_alerts(result.series), patient_days, result.end_t, ends)
    processor_fig = alerting_figures(truth, as_raised, patient_days, result.end_t, ends)
    rules_fig = alerting_figures(truth, rule_alerts, patient_days, result.end_t, ends)
    keys = ("sensitivity", "false_alerts_per_patient_day", "median_lead_time_s")

    def reduction(fig: dict[str, object]) -> float | None:
        base = float(threshold_fig["false_alerts_per_patient_day"])  # type: ignore[arg-type]
        return None if base == 0 else round(1 - float(fig["false_alerts_per_patient_day"]) / base, 3)  # type: ignore[arg-type]

    contributors = [a for a in raised if a.kind in MODEL_RULE_KINDS]
    return {
        "model_version": models.version,
        "seed": seed,
        "patients": patients,
        "days": days,
        "patient_days": patient_days,
        "scoring_points": int(len(ya)),
        "risk_label_prevalence": round(float(ya.mean()), 4),
        "risk_auroc": round(float(roc_auc_score(ya, risk)), 4),
        "risk_auprc": round(float(average_precision_score(ya, risk)), 4),
        "news2_auroc": round(float(roc_auc_score(ya, news2)), 4),
        "news2_auprc": round(float(average_precision_score(ya, news2)), 4),
        "threshold_auroc": round(float(roc_auc_score(ya, breaches)), 4),
        "threshold_auprc": round(float(average_precision_score(ya, breaches)), 4),
        **{k: models_fig[k] for k in keys},
        "false_alert_reduction_vs_thresholds": reduction(models_fig),
        "models": models_fig,
        "news2_baseline": {k: news2_fig[k] for k in keys} | {"detail": news2_fig},
        "threshold_baseline": {k: threshold_fig[k] for k in keys} | {"detail": threshold_fig},
        "rules_baseline": {k: rules_fig[k] for k in keys} | {"detail": rules_fig},
        "processor_rules_and_models": {k: processor_fig[k] for k in keys}
        | {"false_alert_reduction_vs_thresholds": reduction(processor_fig), "detail": processor_fig},
        "model_alerts_with_contributors": sum(1 for a in contributors if a.contributors),
        "model_alerts_with_version": sum(1 for a in contributors if a.model_version == models.version),
        "model_alerts": len(contributors),
        "replay_s": round(replay_s, 1),
        "readings": result.pipeline.totals.readings,
    }


def main_json(result: dict[str, object]) -> str:
    return json.dumps(result, separators=(",", ":"))
