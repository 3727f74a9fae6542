"""Serving through onnxruntime: parity with scikit-learn, clear errors, rules-only fallback."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vigil.core.patient import PatientMonitor
from vigil.core.reading import Reading
from vigil.shell.scoring import ModelLoadError, OnnxScoringStage, default_model_dir, load_model_set

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A model set trained on a tiny simulated cohort (seconds), with the sklearn models in hand."""
    from vigil_models.train import CohortData, TrainConfig, export_onnx, fit_models, simulate

    config = TrainConfig(seed=90, patients=3, days=0.4, train_seeds=1, risk_trees=15, workers=1)
    (train_seed,), calibration_seed = config.seeds()
    train_data, calibration = simulate(train_seed, 3, 0.4), simulate(calibration_seed, 3, 0.4)
    fitted = fit_models(train_data, calibration, config)
    out = tmp_path_factory.mktemp("models")
    from vigil_models.train import train

    train(config, out, log=lambda _m: None)  # the same steps, end to end, into `out`
    return fitted, out, CohortData.concat([train_data, calibration])


def test_onnx_matches_scikit_learn_within_1e5(tiny):
    from vigil_models.train import ANOMALY_INPUTS, RISK_INPUTS, columns, export_onnx, sklearn_scores
    import onnxruntime as ort

    fitted, _, data = tiny
    anomaly_bytes, risk_bytes = export_onnx(fitted)
    X = data.X
    raw, risk = sklearn_scores(fitted, X)
    a = ort.InferenceSession(anomaly_bytes, providers=["CPUExecutionProvider"])
    r = ort.InferenceSession(risk_bytes, providers=["CPUExecutionProvider"])
    onnx_raw = -a.run(["score_samples"], {a.get_inputs()[0].name: X[:, columns(ANOMALY_INPUTS)].astype(np.float64)})[0].reshape(-1)
    onnx_risk = r.run(["probabilities"], {r.get_inputs()[0].name: X[:, columns(RISK_INPUTS)]})[0][:, 1]
    assert len(X) > 1000
    assert np.abs(onnx_raw - raw).max() < 1e-5
    assert np.abs(onnx_risk - risk).max() < 1e-5


def test_trained_set_records_parity_version_and_fingerprint(tiny):
    _, out, _ = tiny
    meta = json.loads((out / "metadata.json").read_text())
    parity = meta["metrics"]["onnx_parity"]
    assert parity["anomaly_max_abs_diff"] < 1e-5 and parity["risk_max_abs_diff"] < 1e-5
    assert meta["model_version"].startswith("vigil-models-1+")
    assert len(meta["training"]["data_fingerprint_sha256"]) == 64
    models = load_model_set(out)
    assert models.version == meta["model_version"]


def test_packaged_artifacts_load_and_match_this_core():
    models = load_model_set(default_model_dir())
    assert models.version.startswith("vigil-models-1+")
    meta = models.metadata
    assert meta["metrics"]["onnx_parity"]["risk_max_abs_diff"] < 1e-5
    assert meta["metrics"]["onnx_parity"]["anomaly_max_abs_diff"] < 1e-5
    for name in ("anomaly.onnx", "risk.onnx"):
        assert (default_model_dir() / name).stat().st_size < 5_000_000, "small enough to commit"


def test_missing_or_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="metadata not found"):
        load_model_set(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(default_model_dir(), broken)
    (broken / "risk.onnx").unlink()
    with pytest.raises(ModelLoadError, match="risk model file missing"):
        load_model_set(broken)
    shutil.copy(default_model_dir() / "risk.onnx", broken / "risk.onnx")
    data = bytearray((broken / "anomaly.onnx").read_bytes())
    data[100:140] = b"\x00" * 40
    (broken / "anomaly.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="anomaly model file corrupt"):
        load_model_set(broken)
    (broken / "metadata.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="metadata unreadable"):
        load_model_set(broken)


def test_stage_scores_all_patients_in_one_call_and_rate_limits():
    stage = OnnxScoringStage(load_model_set())
    monitors = []
    for i in range(25):
        m = PatientMonitor(f"pt-{i}")
        for k in range(8):
            m.observe(Reading(f"pt-{i}", f"wr-{i}", 1_800_000_000.0 + 15 * k, k + 1, hr=70.0 + k % 3, spo2=97.0,
                              rr=15.0, temp=36.8, accel=0.02, contact=True))
        monitors.append(m)
    assert stage.run(monitors) == []
    assert stage.calls == 1 and stage.rows_scored == 25
    assert all(r.model_version == stage.version for r in stage.latest.values())
    stage.run(monitors)  # same patient time: not due again
    assert stage.calls == 1


def test_runtime_runs_on_rules_alone_when_models_fail(tmp_path):
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime
    from vigil.shell.registry import Registry
    from vigil.settings import VigilSettings

    bad = VigilSettings(data_dir=tmp_path / "a", model_dir=tmp_path / "no-models")
    runtime = EmbeddedRuntime(bad, Registry())
    health = runtime.health()
    assert runtime.pipeline.model_stage is None
    assert health["scoring"] == "rules"
    assert health["models"]["loaded"] is False and "metadata not found" in health["models"]["error"]
    runtime.store.close()

    good = EmbeddedRuntime(VigilSettings(data_dir=tmp_path / "b"), Registry())
    health = good.health()
    assert health["scoring"] == "rules+models" and health["models"]["version"].startswith("vigil-models-1+")
    good.store.close()

    off = EmbeddedRuntime(VigilSettings(data_dir=tmp_path / "c", models_enabled=False), Registry())
    assert off.health()["scoring"] == "rules" and off.pipeline.model_stage is None
    off.store.close()
