"""The served models end to end: simulator in, pipeline with the ONNX stage, alerts out."""

import json

import pytest

from vigil.cli import main
from vigil.core.model_rules import MODEL_RULE_KINDS
from vigil_models.replay import make_plan, replay
from vigil.shell.scoring import OnnxScoringStage, load_model_set

pytestmark = pytest.mark.slow


def test_model_alerts_carry_version_contributors_and_explanations():
    from vigil.shell.explain.templates import clinician_summary

    models = load_model_set()
    stage = OnnxScoringStage(models)
    result = replay(make_plan(1002, 6, 0.75), stage, keep_readings=False)
    model_alerts = [a for a in result.pipeline.totals.raised if a.kind in MODEL_RULE_KINDS]
    assert model_alerts, "a cohort with clinical scenarios raises model alerts"
    for alert in model_alerts:
        assert alert.model_version == models.version
        assert alert.contributors and {"feature", "vital", "z", "value", "baseline"} <= set(alert.contributors[0])
        summary = clinician_summary(alert.as_dict())
        assert "Drivers:" in summary and models.version in summary
    assert stage.calls > 0 and stage.rows_scored >= stage.calls


def test_evaluate_json_last_line_has_the_issue_keys(capsys):
    code = main(["model", "evaluate", "--seed", "1003", "--patients", "4", "--days", "0.5", "--json", "--card", ""])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    for key in ("risk_auroc", "risk_auprc", "news2_auroc", "threshold_auroc", "sensitivity",
                "false_alerts_per_patient_day", "median_lead_time_s"):
        assert key in result
    for baseline in ("news2_baseline", "threshold_baseline"):
        assert {"sensitivity", "false_alerts_per_patient_day", "median_lead_time_s"} <= set(result[baseline])


def test_evaluate_refuses_a_training_seed(capsys):
    seeds = load_model_set().metadata["training"]["train_seeds"]
    assert main(["model", "evaluate", "--seed", str(seeds[0]), "--patients", "2", "--days", "0.1", "--card", ""]) == 2
    assert "used to train" in capsys.readouterr().err
