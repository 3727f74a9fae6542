"""The model set (anomaly + deterioration risk) behind one onnxruntime session each.

Loaded once per process. Every check that can fail is done at load time (files present,
checksums, feature names the same as this core's, sessions that build), so a bad artifact is
one clear `ModelLoadError` at start, and the processor carries on with rules alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.core.events import Event
from vigil.core.features import FEATURE_NAMES, patient_features, top_deviations
from vigil.core.model_rules import ModelScores, ModelThresholds
from vigil.core.patient import PatientMonitor

METADATA_FILE = "metadata.json"


class ModelLoadError(RuntimeError):
    """The model set cannot be used; the message says which file and why."""


def default_model_dir() -> Path:
    """The artifacts shipped with the models package (models/vigil_models/artifacts).

    Found by location, not imported: serving depends on the artifacts (data), never on the
    training code in vigil_models."""
    spec = importlib.util.find_spec("vigil_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the vigil_models package (and its artifacts) is not installed")
    return Path(list(spec.submodule_search_locations)[0]).resolve() / "artifacts"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(slots=True)
class _Model:
    name: str
    session: object  # onnxruntime.InferenceSession
    input_name: str
    output_name: str
    columns: np.ndarray  # indices into FEATURE_NAMES
    dtype: type  # the input type the graph was exported with


@dataclass(slots=True)
class ScoreRecord:
    """The newest scores of one patient, with the model version that produced them."""

    t: float
    anomaly: float
    risk: float
    model_version: str


class ModelSet:
    """Both models, ready to score a feature matrix (rows = patients, FEATURE_NAMES columns)."""

    def __init__(self, directory: Path, metadata: dict, anomaly: _Model, risk: _Model) -> None:
        self.directory = directory
        self.metadata = metadata
        self.version: str = str(metadata["model_version"])
        self.anomaly = anomaly
        self.risk = risk
        a = metadata["anomaly"]
        self.anomaly_median = float(a["raw_median"])
        self.anomaly_scale = max(float(a["raw_q999"]) - self.anomaly_median, 1e-9)
        self.thresholds = ModelThresholds.from_dict(dict(metadata.get("thresholds", {})))

    def raw_anomaly(self, features: np.ndarray) -> np.ndarray:
        """The anomaly model's own output for each row: minus the log-likelihood under the mixture."""
        m = self.anomaly
        out = m.session.run([m.output_name], {m.input_name: np.ascontiguousarray(features[:, m.columns], dtype=m.dtype)})[0]
        return -np.asarray(out, dtype=np.float64).reshape(-1)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(anomaly, risk) for each row. Anomaly 1.0 = the 99.9th centile of stable training
        windows; risk is a calibrated probability. One session call per model."""
        features = np.asarray(features, dtype=np.float32)
        anomaly = (self.raw_anomaly(features) - self.anomaly_median) / self.anomaly_scale
        m = self.risk
        proba = m.session.run([m.output_name], {m.input_name: np.ascontiguousarray(features[:, m.columns], dtype=m.dtype)})[0]
        return anomaly, np.asarray(proba, dtype=np.float64)[:, 1]


def load_model_set(directory: Path | str | None = None) -> ModelSet:
    """Load and check the model set in `directory` (default: the packaged artifacts)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ModelLoadError(f"onnxruntime is not installed: {exc}") from exc
    directory = Path(directory) if directory is not None else default_model_dir()
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelLoadError(f"model metadata not found: {meta_path} (train with `vigil model train`)")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        names = list(metadata["feature_names"])
        version = metadata["model_version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"model metadata unreadable: {meta_path}: {exc}") from exc
    if names != list(FEATURE_NAMES):
        raise ModelLoadError(
            f"model {version} was trained on a different feature set than this core computes "
            f"({len(names)} vs {len(FEATURE_NAMES)} features); retrain with `vigil model train`")
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    models = []
    for key in ("anomaly", "risk"):
        try:
            spec = metadata[key]
            path = directory / spec["file"]
            columns = np.array([index[name] for name in spec["inputs"]], dtype=np.int64)
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"model metadata for {key!r} incomplete in {meta_path}: {exc}") from exc
        if not path.is_file():
            raise ModelLoadError(f"{key} model file missing: {path}")
        digest = _sha256(path)
        if digest != spec.get("sha256"):
            raise ModelLoadError(f"{key} model file corrupt: {path} (sha256 {digest[:12]}…, expected "
                                 f"{str(spec.get('sha256'))[:12]}…)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # small batches: threads cost more than they give
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{key} model file cannot be loaded by onnxruntime: {path}: {exc}") from exc
        dtype = np.float64 if spec.get("input_dtype") == "float64" else np.float32
        models.append(_Model(key, session, session.get_inputs()[0].name, spec["output"], columns, dtype))
    return ModelSet(directory, metadata, models[0], models[1])


class OnnxScoringStage:
    """The pipeline's model stage: one batched call per model for every patient a batch touched.

    A patient is scored at most once per `min_interval_s` of their own time (the features are
    averages over minutes, so scoring more often adds cost, not information). The scores go
    through the core's alert policy (`PatientMonitor.apply_model_scores`).
    """

    def __init__(self, models: ModelSet, min_interval_s: float = 50.0) -> None:
        self.models = models
        self.min_interval_s = min_interval_s
        self.latest: dict[str, ScoreRecord] = {}
        self.rows_scored = 0
        self.calls = 0

    @property
    def version(self) -> str:
        return self.models.version

    def run(self, monitors: list[PatientMonitor]) -> list[Event]:
        due: list[PatientMonitor] = []
        latest = self.latest
        for monitor in monitors:
            t = monitor.last_seen_t
            if t is None:
                continue
            previous = latest.get(monitor.patient_id)
            if previous is None or t - previous.t >= self.min_interval_s:
                due.append(monitor)
        if not due:
            return []
        features = [patient_features(m, m.last_seen_t) for m in due]  # type: ignore[arg-type]
        anomaly, risk = self.models.score(np.asarray(features, dtype=np.float32))
        self.calls += 1
        self.rows_scored += len(due)
        version, thresholds = self.models.version, self.models.thresholds
        events: list[Event] = []
        for i, monitor in enumerate(due):
            t = monitor.last_seen_t
            a, r = float(anomaly[i]), float(risk[i])
            if not (math.isfinite(a) and math.isfinite(r)):
                continue
            latest[monitor.patient_id] = ScoreRecord(t, a, r, version)  # type: ignore[arg-type]
            contributors: tuple[dict[str, object], ...] = ()
            if a >= thresholds.anomaly_high or r >= thresholds.risk_high:  # only an alert needs its reasons
                contributors = tuple(c.as_dict() for c in top_deviations(monitor, features[i]))
            events.extend(monitor.apply_model_scores(ModelScores(t, a, r, version, contributors), thresholds))  # type: ignore[arg-type]
        return events
