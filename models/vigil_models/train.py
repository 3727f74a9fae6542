"""`vigil model train`: simulate a labelled cohort, fit both models, export them to ONNX.

Data: several simulator seeds, many patients, days each, every scenario, replayed through the
real Pipeline (models/vigil_models/replay.py), so the features are the processor's own. Training seeds are
100*K + 0..5 and the calibration seed 100*K + 6 for `--seed K`; evaluation refuses them.

- anomaly: a Gaussian mixture (3 components, full covariance) of the deviation features of
  stable windows (far from any injected event); the score is the negative log-likelihood,
  rescaled so that 1.0 is the 99.9th centile of stable training windows. (IsolationForest was
  tried first: 20x slower per row in onnxruntime and it separated events less well.)
- rising risk: GradientBoostingClassifier on every feature, then Platt (sigmoid) calibration
  on the calibration seed. Label: NEWS2 >= 5 at rest (held 5 min) or a clinical event begins
  or is under way within the next hour.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from vigil.core.features import FEATURE_NAMES
from vigil.core.model_rules import DEFAULT_MODEL_THRESHOLDS

MODEL_SERIES = "vigil-models-1"
ANOMALY_INPUTS: tuple[str, ...] = tuple(
    n for n in FEATURE_NAMES if n.endswith("_z") and not n.startswith("news2")
) + ("activity_g",)
RISK_INPUTS: tuple[str, ...] = FEATURE_NAMES
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(slots=True)
class TrainConfig:
    seed: int = 1
    patients: int = 30
    days: float = 3.0
    train_seeds: int = 6
    row_stride: int = 3  # consecutive minutes are near-duplicates; keep every 3rd for the risk model
    risk_trees: int = 120
    anomaly_components: int = 3
    workers: int = 2

    def seeds(self) -> tuple[list[int], int]:
        base = 100 * self.seed
        return [base + i for i in range(self.train_seeds)], base + self.train_seeds


@dataclass(slots=True)
class CohortData:
    """Scoring points of one or more simulated cohorts, as arrays."""

    X: np.ndarray  # float32, FEATURE_NAMES columns
    y: np.ndarray  # risk label
    stable: np.ndarray  # far from every injected event
    in_event: np.ndarray  # inside a clinical event
    seed: np.ndarray
    patient: np.ndarray  # patient index within its seed

    @staticmethod
    def concat(parts: list["CohortData"]) -> "CohortData":
        return CohortData(*(np.concatenate([getattr(p, f) for p in parts]) for f in CohortData.__slots__))

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name in CohortData.__slots__:
            h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return h.hexdigest()


def simulate(seed: int, patients: int, days: float) -> CohortData:
    """Replay one simulated cohort through the pipeline and label every scoring point."""
    from vigil_models.replay import make_plan, replay, risk_labels, stable_mask

    plan = make_plan(seed, patients, days)
    result = replay(plan, keep_readings=False)
    by_patient: dict[str, list] = {}
    for event in plan.truth:
        by_patient.setdefault(event.patient_id, []).append(event)
    X, y, stable, in_event, who = [], [], [], [], []
    for index, p in enumerate(plan.patients):
        s = result.series[p.patient_id]
        events = by_patient.get(p.patient_id, [])
        X.extend(s.features)
        y.extend(risk_labels(s, events))
        stable.extend(stable_mask(s, events))
        clinical = [(e.onset_t, e.end_t) for e in events if e.expects == "clinical"]
        in_event.extend(any(a <= t <= b for a, b in clinical) for t in s.t)
        who.extend([index] * len(s.t))
    n = len(y)
    return CohortData(np.asarray(X, dtype=np.float32).reshape(n, len(FEATURE_NAMES)), np.asarray(y, dtype=np.int8),
                      np.asarray(stable, dtype=bool), np.asarray(in_event, dtype=bool),
                      np.full(n, seed, dtype=np.int32), np.asarray(who, dtype=np.int32))


def simulate_many(seeds: list[int], patients: int, days: float, workers: int) -> list[CohortData]:
    jobs = [(s, patients, days) for s in seeds]
    if workers <= 1 or len(jobs) == 1:
        return [simulate(*job) for job in jobs]
    with get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        return pool.starmap(simulate, jobs)


def columns(names: tuple[str, ...]) -> list[int]:
    return [FEATURE_NAMES.index(n) for n in names]


@dataclass(slots=True)
class FittedModels:
    anomaly: object  # GaussianMixture
    risk: object  # CalibratedClassifierCV with the GradientBoostingClassifier unwrapped inside
    anomaly_median: float
    anomaly_q999: float


def fit_models(train: CohortData, calibration: CohortData, config: TrainConfig) -> FittedModels:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.mixture import GaussianMixture

    a_cols = columns(ANOMALY_INPUTS)
    normal = train.X[train.stable][:, a_cols].astype(np.float64)
    anomaly = GaussianMixture(config.anomaly_components, covariance_type="full", reg_covar=1e-3,
                              random_state=config.seed).fit(normal[:: config.row_stride])
    raw = -anomaly.score_samples(normal)
    median, q999 = (float(v) for v in np.quantile(raw, [0.5, 0.999]))

    keep = np.arange(len(train.y)) % config.row_stride == 0
    gb = GradientBoostingClassifier(n_estimators=config.risk_trees, max_depth=3, learning_rate=0.1,
                                    subsample=0.5, random_state=config.seed)
    gb.fit(train.X[keep][:, columns(RISK_INPUTS)], train.y[keep])
    risk = CalibratedClassifierCV(FrozenEstimator(gb), method="sigmoid")
    risk.fit(calibration.X[:, columns(RISK_INPUTS)], calibration.y)
    # skl2onnx knows GradientBoostingClassifier but not the FrozenEstimator wrapper, which only
    # forwards calls: unwrap it (predictions are unchanged; the parity test checks that).
    for calibrated in risk.calibrated_classifiers_:
        calibrated.estimator = calibrated.estimator.estimator
    return FittedModels(anomaly, risk, median, q999)


def export_onnx(models: FittedModels) -> tuple[bytes, bytes]:
    from skl2onnx import to_onnx

    # The mixture's log-likelihood needs float64 to match scikit-learn within 1e-5.
    sample_a = np.zeros((1, len(ANOMALY_INPUTS)), dtype=np.float64)
    sample_r = np.zeros((1, len(RISK_INPUTS)), dtype=np.float32)
    anomaly = to_onnx(models.anomaly, sample_a, options={id(models.anomaly): {"score_samples": True}},
                      target_opset=TARGET_OPSET[""])
    risk = to_onnx(models.risk, sample_r, options={"zipmap": False}, target_opset=TARGET_OPSET)
    return anomaly.SerializeToString(), risk.SerializeToString()


def sklearn_scores(models: FittedModels, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training framework's own outputs: -log-likelihood (anomaly, raw) and P(risk)."""
    X = np.asarray(X, dtype=np.float32)
    raw = -models.anomaly.score_samples(X[:, columns(ANOMALY_INPUTS)].astype(np.float64))
    risk = models.risk.predict_proba(X[:, columns(RISK_INPUTS)])[:, 1]
    return raw, risk


def risk_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    bins = np.clip((p * 10).astype(int), 0, 9)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    return {"auroc": round(float(roc_auc_score(y, p)), 4), "auprc": round(float(average_precision_score(y, p)), 4),
            "brier": round(float(brier_score_loss(y, p)), 4), "ece": round(float(ece), 4),
            "prevalence": round(float(y.mean()), 4)}


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    return {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def train(config: TrainConfig, out_dir: Path, log=print) -> dict[str, object]:
    """Simulate, fit, export and check; write anomaly.onnx, risk.onnx and metadata.json."""
    started = time.perf_counter()
    train_seeds, calibration_seed = config.seeds()
    parts = simulate_many([*train_seeds, calibration_seed], config.patients, config.days, config.workers)
    train_data, calibration = CohortData.concat(parts[:-1]), parts[-1]
    simulated_s = time.perf_counter() - started
    log(f"simulated {len(parts)} cohorts, {len(train_data.y) + len(calibration.y)} scoring points in {simulated_s:.0f} s")
    models = fit_models(train_data, calibration, config)
    fitted_s = time.perf_counter() - started - simulated_s
    log(f"fitted both models in {fitted_s:.0f} s")
    anomaly_bytes, risk_bytes = export_onnx(models)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "anomaly.onnx").write_bytes(anomaly_bytes)
    (out_dir / "risk.onnx").write_bytes(risk_bytes)

    fingerprint = hashlib.sha256(
        (train_data.fingerprint() + calibration.fingerprint() + json.dumps(config_dict(config), sort_keys=True)).encode()
    ).hexdigest()
    raw_cal, p_cal = sklearn_scores(models, calibration.X)
    anomaly_cal = (raw_cal - models.anomaly_median) / (models.anomaly_q999 - models.anomaly_median)
    metrics = {
        "risk_calibration_seed": risk_metrics(calibration.y.astype(int), p_cal),
        "anomaly_calibration_seed": {
            "stable_windows_over_1": round(float((anomaly_cal[calibration.stable] >= 1).mean()), 5),
            "in_event_windows_over_1": round(float((anomaly_cal[calibration.in_event] >= 1).mean()), 4),
        },
    }
    metadata: dict[str, object] = {
        "model_version": f"{MODEL_SERIES}+{fingerprint[:10]}",
        "created_by": "vigil model train",
        "feature_names": list(FEATURE_NAMES),
        "training": {
            "config": config_dict(config),
            "train_seeds": train_seeds,
            "calibration_seed": calibration_seed,
            "scoring_points": {"train": int(len(train_data.y)), "calibration": int(len(calibration.y))},
            "risk_label_prevalence": round(float(train_data.y.mean()), 4),
            "stable_points": int(train_data.stable.sum()),
            "data_fingerprint_sha256": fingerprint,
            "seconds": {"simulate": round(simulated_s, 1), "fit": round(fitted_s, 1)},
            "versions": versions(),
        },
        "anomaly": {
            "file": "anomaly.onnx", "sha256": hashlib.sha256(anomaly_bytes).hexdigest(), "output": "score_samples",
            "input_dtype": "float64",
            "estimator": f"GaussianMixture(n_components={config.anomaly_components}, covariance_type='full')",
            "inputs": list(ANOMALY_INPUTS), "raw_median": models.anomaly_median, "raw_q999": models.anomaly_q999,
        },
        "risk": {
            "file": "risk.onnx", "sha256": hashlib.sha256(risk_bytes).hexdigest(), "output": "probabilities",
            "estimator": f"GradientBoostingClassifier(n_estimators={config.risk_trees}, max_depth=3) + sigmoid calibration",
            "inputs": list(RISK_INPUTS), "label": "NEWS2 >= 5 at rest (held 5 min) or a clinical event begins or is "
                                                  "under way within 60 min",
        },
        "thresholds": DEFAULT_MODEL_THRESHOLDS.as_dict(),
        "metrics": metrics,
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")

    # Parity: what onnxruntime serves must match what scikit-learn fitted.
    from vigil.shell.scoring import load_model_set

    served = load_model_set(out_dir)
    onnx_raw = served.raw_anomaly(calibration.X)
    _, onnx_risk = served.score(calibration.X)
    parity = {"anomaly_max_abs_diff": float(np.abs(onnx_raw - raw_cal).max()),
              "risk_max_abs_diff": float(np.abs(onnx_risk - p_cal).max())}
    metrics["onnx_parity"] = parity
    metadata["training"]["seconds"]["total"] = round(time.perf_counter() - started, 1)  # type: ignore[index]
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    log(f"parity {parity}; wrote {out_dir} in {time.perf_counter() - started:.0f} s")
    return metadata


def config_dict(config: TrainConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in TrainConfig.__slots__ if name != "workers"}
