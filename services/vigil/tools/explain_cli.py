"""`vigil explain` and `vigil explain-eval`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _explain(args: argparse.Namespace) -> int:
    from vigil.shell.stores.desk_store import DeskStore
    from vigil.tools.explain_eval import explain_alert_command
    from vigil.shell.explain.llm import LlmConfig
    from vigil.settings import VigilSettings
    from vigil.shell.stores.sql import SqlStore

    settings = VigilSettings()
    if args.data_dir:
        settings.data_dir = Path(args.data_dir)
    url = settings.database_url or settings.sqlite_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"vigil explain: no store at {url} (set VIGIL_DATABASE_URL or --data-dir)", file=sys.stderr)
        return 2
    store = SqlStore(url)
    try:
        alert = store.alert(args.alert_id)
        if alert is None:
            print(f"vigil explain: no alert {args.alert_id!r} in {url.split('///')[0]}", file=sys.stderr)
            return 1
        stored = DeskStore(store.engine).explanations_for(args.alert_id)
    finally:
        store.close()
    language = args.language
    if language is None:
        from vigil.shell.registry import load_roster

        roster = load_roster(settings.roster) if settings.roster else None
        profile = next((p for p in roster.patients if p.patient_id == alert["patient_id"]), None) if roster else None
        language = profile.language if profile else "en"
    print(explain_alert_command(alert, LlmConfig.from_env(), language, settings.emergency_number))
    for row in stored:
        outcome = row["source"] + (f" (fallback: {row['fallback_reason']})" if row["fallback_reason"] else "")
        print(f"\nDelivered explanation [{row['language']}], {outcome}:")
        print(f"  patient:   {row['patient_text']}")
        print(f"  clinician: {row['clinician_text']}")
    return 0


def _explain_eval(args: argparse.Namespace) -> int:
    from vigil.tools.explain_eval import render_eval, run_explain_eval
    from vigil.shell.explain.llm import LlmConfig

    if args.texts:
        return _explain_texts(Path(args.texts))
    report = run_explain_eval(args.patients, args.seed, LlmConfig.from_env())
    print(render_eval(report))
    if args.json:
        print(json.dumps(report))
    return 0


def _explain_texts(path: Path) -> int:
    """One JSON line per model text (kind, severity, language, audience, the model's text, the text
    delivered, delivered or fell back, the reasons), then the summary as one JSON line."""
    from vigil.tools.explain_eval import judge_texts

    if not path.exists():
        print(f"vigil explain-eval: no file {path}", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    results, summary = judge_texts(rows)
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    print(json.dumps({"summary": summary}, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    explain = sub.add_parser("explain", help="print the explanations of one alert (template, model if configured, "
                             "and what was delivered)")
    explain.add_argument("--alert-id", required=True)
    explain.add_argument("--data-dir", help="embedded store directory (default VIGIL_DATA_DIR); or VIGIL_DATABASE_URL")
    explain.add_argument("--language", choices=["en", "zh"], help="default: the patient's language from the roster")
    explain.set_defaults(func=_explain)

    evaluate = sub.add_parser("explain-eval", help="run the explainer over simulated alerts and check every text")
    evaluate.add_argument("--patients", type=int, default=40)
    evaluate.add_argument("--seed", type=int, default=7)
    evaluate.add_argument("--json", action="store_true", help="last line: the report as one JSON object")
    evaluate.add_argument("--texts", metavar="FILE", help="judge model answers from a JSON-lines file instead: one JSON "
                          "line per model text, then the summary (share delivered per audience)")
    evaluate.set_defaults(func=_explain_eval)
