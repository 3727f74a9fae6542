"""models/MODEL_CARD.md, written by `vigil model evaluate` from its own run and the model metadata."""

from __future__ import annotations

from pathlib import Path


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def write_model_card(path: Path, result: dict, metadata: dict) -> None:
    training = metadata.get("training", {})
    config = training.get("config", {})
    metrics = metadata.get("metrics", {})
    keys = ("sensitivity", "false_alerts_per_patient_day", "median_lead_time_s")
    rows = [
        ("Models: anomaly + rising_risk alerts", result),
        ("Processor: rules + models", result["processor_rules_and_models"]),
        ("Rules alone (Vigil's rule set)", result["rules_baseline"]),
        ("Baseline: NEWS2 ≥ 5 alone", result["news2_baseline"]),
        ("Baseline: fixed single-vital thresholds", result["threshold_baseline"]),
    ]
    table = "\n".join(f"| {label} | " + " | ".join(_fmt(fig[k]) for k in keys) + " |" for label, fig in rows)
    versions = ", ".join(f"{k} {v}" for k, v in training.get("versions", {}).items())
    parity = metrics.get("onnx_parity", {})
    text = (_introduction(result, metadata) + _training(metadata, training, config, versions, parity, metrics)
            + _evaluation(result, table) + NOT_VALIDATED_FOR)
    path.write_text(text, encoding="utf-8")


def _introduction(result: dict, metadata: dict) -> str:
    return f"""# Model card: Vigil anomaly and deterioration-risk models

Written by `vigil model evaluate --seed {result['seed']} --patients {result['patients']} --days {result['days']:g}`
from the run it reports. Model version **{result['model_version']}**.

**Vigil supports clinicians; it does not replace them.** These models have only ever seen
simulated patients. They are not validated on real patients and must not be used to make
clinical decisions.

## What the models are

| model | estimator | input | output |
|---|---|---|---|
| anomaly | {metadata['anomaly']['estimator']} | {len(metadata['anomaly']['inputs'])} deviations from the patient's own baseline (z-scores, fast−slow trends, heart-rate variability, activity) | negative log-likelihood, rescaled; 1.0 = the 99.9th centile of stable training windows |
| rising risk | {metadata['risk']['estimator']} | all {len(metadata['feature_names'])} features (`services/vigil/core/features.py`) | calibrated probability |

Risk label: {metadata['risk']['label']}.

Both run in the processor through onnxruntime (`vigil.shell.scoring`), one session each, one batched
call per pipeline batch, each patient scored at most once a minute. Their scores become alerts
(`anomaly`, `rising_risk`) only through the core's alert policy: persistence (anomaly 10 min and
5 scores, risk 5 min and 4 scores), hysteresis, one open alert per kind, and no firing or
clearing while the signal is untrusted. Each alert carries the model version and the features
that drove it (the largest deviations from the patient's baseline).

"""


def _training(metadata: dict, training: dict, config: dict, versions: str, parity: dict, metrics: dict) -> str:
    return f"""## What they were trained on

- Simulated cohorts from `vigil_simulators` (all scenarios: sepsis-like deterioration,
  hypoxaemia, fast irregular rhythm, bradycardia, hypertensive crisis, fever, device offline,
  low battery, artefact bursts), seeds {training.get('train_seeds')} for fitting and
  {training.get('calibration_seed')} for calibration; {config.get('patients')} patients x
  {config.get('days')} days per seed, one reading every 15 s, replayed through the real
  processing pipeline so the features are exactly the processor's.
- {training.get('scoring_points', {}).get('train')} training and {training.get('scoring_points', {}).get('calibration')}
  calibration scoring points (one per patient per minute); risk-label prevalence
  {training.get('risk_label_prevalence')}. The anomaly model saw only stable windows (more than an
  hour from any injected event).
- Training-data fingerprint (SHA-256 of the feature matrix, labels and configuration):
  `{training.get('data_fingerprint_sha256')}`.
- Versions: {versions}.
- ONNX parity on the calibration seed (max absolute difference, ONNX vs scikit-learn):
  anomaly {_fmt(parity.get('anomaly_max_abs_diff'))}, risk {_fmt(parity.get('risk_max_abs_diff'))}.
- Calibration seed: risk {metrics.get('risk_calibration_seed')}.

"""


def _evaluation(result: dict, table: str) -> str:
    return f"""## Held-out evaluation

Seed {result['seed']} (never used in training), {result['patients']} patients x {result['days']:g} days
= {result['patient_days']:g} patient-days, {result['readings']} readings, {result['scoring_points']} scoring points,
risk-label prevalence {result['risk_label_prevalence']}.

| score on every scoring point | AUROC | AUPRC |
|---|---|---|
| risk model | {result['risk_auroc']} | {result['risk_auprc']} |
| NEWS2 | {result['news2_auroc']} | {result['news2_auprc']} |
| number of fixed thresholds breached | {result['threshold_auroc']} | {result['threshold_auprc']} |

| alerting (same run) | sensitivity | false alerts / patient-day | median lead time (s) |
|---|---|---|---|
{table}

- Sensitivity: share of clinical events with a clinical alert between onset and 30 min after
  the end (`vigil_simulators.detection`). A false alert is a clinical alert outside every such
  window.
- Lead time: from the first alert to the event's first reading with NEWS2 ≥ 5 (positive: the
  alert came first), over events that reach NEWS2 ≥ 5; others have no endpoint.
- Baselines have no persistence: NEWS2 alerts when a reading's NEWS2 reaches 5; fixed
  thresholds alert on the first trusted reading past a population limit (SpO2 ≤ 91 %, or
  ≤ 85 % on scale 2; HR ≥ 131 or ≤ 40; RR ≥ 25 or ≤ 8; T ≥ 38.1 or ≤ 35.0 °C; SBP ≥ 180 or
  ≤ 90; DBP ≥ 120), one open per vital, closed when back in range.
- False alerts vs fixed thresholds: models {_fmt(result['false_alert_reduction_vs_thresholds'])} fewer,
  processor {_fmt(result['processor_rules_and_models']['false_alert_reduction_vs_thresholds'])} fewer
  (as a fraction).
- Model alerts: {result['model_alerts']}, with contributors {result['model_alerts_with_contributors']},
  with the model version {result['model_alerts_with_version']}.

"""


NOT_VALIDATED_FOR = """## What they are not validated for

- Real patients, real devices, or any population: all data are simulated, and the simulator's
  physiology is simple (stationary patients, independent noise, scenarios that shift vitals
  by fixed amounts). Figures here say the software works as designed, not that it is safe.
- Predicting deterioration before it starts: simulated events have no precursors, so the risk
  model mostly recognises deterioration under way; its "within the hour" label rewards that.
- Children, pregnancy, arrhythmias other than the simulated fast irregular rhythm, patients on
  oxygen (no simulated patient was), or devices sampling much faster or slower than every 15 s.
- Replacing NEWS2 or clinical judgement. The rules keep running beside the models, and the
  processor runs on rules alone when the models cannot be loaded.
"""
