"""`vigil model train | evaluate | info` and `vigil bench model` (registered from vigil.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vigil_models.card import write_model_card

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CARD = Path(__file__).resolve().parent / "MODEL_CARD.md"


def _train(args: argparse.Namespace) -> int:
    from vigil_models.train import TrainConfig, train

    config = TrainConfig(seed=args.seed, patients=args.patients, days=args.days, train_seeds=args.train_seeds,
                         workers=args.workers)
    log = (lambda _msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    metadata = train(config, Path(args.out), log=log)
    summary = {"model_version": metadata["model_version"], "out": str(args.out), **metadata["metrics"],  # type: ignore[dict-item]
               "seconds": metadata["training"]["seconds"]}  # type: ignore[index]
    print(json.dumps(summary))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from vigil_models.evaluate import evaluate
    from vigil.shell.scoring import ModelLoadError

    try:
        result = evaluate(args.seed, args.patients, args.days, Path(args.model_dir) if args.model_dir else None)
    except (ValueError, ModelLoadError) as exc:
        print(f"vigil model evaluate: {exc}", file=sys.stderr)
        return 2
    if args.card:
        from vigil.shell.scoring import default_model_dir

        model_dir = Path(args.model_dir) if args.model_dir else default_model_dir()
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        write_model_card(Path(args.card), result, metadata)
    if not args.json:
        keys = ("sensitivity", "false_alerts_per_patient_day", "median_lead_time_s")
        print(f"model {result['model_version']} on seed {args.seed}, {args.patients} patients x {args.days:g} days")
        print(f"  risk AUROC {result['risk_auroc']}  AUPRC {result['risk_auprc']}  (NEWS2 AUROC {result['news2_auroc']}, "
              f"fixed thresholds AUROC {result['threshold_auroc']})")
        for label, fig in (("models (anomaly + rising_risk)", result),
                           ("rules + models (the processor)", result["processor_rules_and_models"]),
                           ("rules alone", result["rules_baseline"]),
                           ("NEWS2 alone", result["news2_baseline"]),
                           ("fixed thresholds", result["threshold_baseline"])):
            print(f"  {label:32} " + "  ".join(f"{k} {fig[k]}" for k in keys))  # type: ignore[index]
        if args.card:
            print(f"  wrote {args.card}")
    print(json.dumps(result, separators=(",", ":")))
    return 0


def _info(args: argparse.Namespace) -> int:
    from vigil.shell.scoring import ModelLoadError, load_model_set

    try:
        models = load_model_set(Path(args.model_dir) if args.model_dir else None)
    except ModelLoadError as exc:
        print(f"vigil model info: {exc}", file=sys.stderr)
        return 2
    meta = models.metadata
    print(json.dumps({"model_version": models.version, "directory": str(models.directory),
                      "features": len(meta["feature_names"]), "thresholds": meta.get("thresholds"),
                      "metrics": meta.get("metrics")}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `vigil model ...` to the main parser."""
    model = subparsers.add_parser("model", help="train, evaluate and inspect the learned models")
    sub = model.add_subparsers(dest="model_command", required=True)

    train = sub.add_parser("train", help="simulate a labelled cohort, fit both models, export ONNX (< 10 min)")
    train.add_argument("--seed", type=int, default=1, help="training seeds are 100*K + 0..6")
    train.add_argument("--patients", type=int, default=30, help="patients per simulated cohort")
    train.add_argument("--days", type=float, default=3.0, help="simulated days per cohort")
    train.add_argument("--train-seeds", type=int, default=6, help="cohorts to train on (one more calibrates)")
    train.add_argument("--workers", type=int, default=2, help="processes simulating cohorts")
    train.add_argument("--out", default=str(ARTIFACTS))
    train.add_argument("--json", action="store_true", help="no progress lines, only the JSON summary")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="score the served models on held-out simulated patients")
    evaluate.add_argument("--seed", type=int, default=1000, help="a seed never used in training")
    evaluate.add_argument("--patients", type=int, default=40)
    evaluate.add_argument("--days", type=float, default=2.0)
    evaluate.add_argument("--model-dir", default=None, help="default: the packaged models/artifacts")
    evaluate.add_argument("--card", default=str(CARD), help="write the model card here ('' to skip)")
    evaluate.add_argument("--json", action="store_true", help="only the JSON result line")
    evaluate.set_defaults(func=_evaluate)

    info = sub.add_parser("info", help="load the model set and print its version, thresholds and metrics")
    info.add_argument("--model-dir", default=None)
    info.set_defaults(func=_info)


def bench(args: argparse.Namespace) -> dict[str, object]:
    from vigil_models.bench import bench_model

    return bench_model(patients=args.patients, seed=args.seed)
