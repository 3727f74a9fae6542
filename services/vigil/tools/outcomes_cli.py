"""`vigil outcomes export`: the outcome labels (what clinicians found on resolving), for the models.

Role-checked and audited like a read through the API: the person exporting names their account
(`--as`) and gives its password on stdin; only a role that reads incidents (nurse, physician) may
export, and only the patients of their wards (the roster's, VIGIL_ROSTER). The export is one row of
the access audit ("export outcomes", every patient it named, address "cli"). Streams JSON lines or
CSV to stdout from VIGIL_DATABASE_URL or the embedded store in VIGIL_DATA_DIR.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

from vigil.tools.iso_time import iso_time


def _export(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine, inspect

    from vigil.core.access import Permission, permits
    from vigil.runtimes.shared.skeleton import registry_for
    from vigil.settings import VigilSettings
    from vigil.shell.identity.accounts import Accounts
    from vigil.shell.stores.access_audit import AuditTrail
    from vigil.shell.stores.outcome_labels import EXPORT_COLUMNS, outcome_labels

    settings = VigilSettings()
    engine = create_engine(settings.database_url or settings.sqlite_url())
    if not inspect(engine).has_table("incidents") or "outcome" not in {c["name"] for c in inspect(engine).get_columns("incidents")}:
        print("vigil outcomes export: this store holds no outcomes yet (VIGIL_DATABASE_URL / VIGIL_DATA_DIR)", file=sys.stderr)
        return 1
    account = Accounts(engine).verify(args.as_user, sys.stdin.readline().rstrip("\n"))
    trail = AuditTrail(engine)
    if account is None or not permits(account.principal(), Permission.READ_INCIDENTS):
        principal = None if account is None else account.principal()
        trail.write(trail.rows(principal, "export outcomes", [], "vigil outcomes export", "denied", "cli", 403))
        print("vigil outcomes export: refused: wrong username or password, or a role that does not read incidents",
              file=sys.stderr)
        return 2
    principal = account.principal()
    scope = {p.patient_id for p in registry_for(settings).patients() if p.ward in principal.wards} | set(principal.patients)
    rows = list(outcome_labels(engine, since=args.since, until=args.until, patient_ids=scope))
    trail.write(trail.rows(principal, "export outcomes", (r["patient_id"] for r in rows), "vigil outcomes export",
                           "ok", "cli", 200))  # before the first line: an export nobody recorded is not sent
    _write(rows, args.format, EXPORT_COLUMNS)
    engine.dispose()
    return 0


def _write(rows: list[dict], form: str, columns: tuple[str, ...]) -> None:
    out = csv.DictWriter(sys.stdout, columns, lineterminator="\n") if form == "csv" else None
    if out is not None:
        out.writeheader()
    for row in rows:
        if out is not None:
            out.writerow(row)
        else:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def register(sub: argparse._SubParsersAction) -> None:
    outcomes = sub.add_parser("outcomes", help="outcome labels of resolved incidents (true deterioration, false "
                              "alarm, artefact, other), for the models")
    outcomes_sub = outcomes.add_subparsers(dest="outcomes_command", required=True)
    export = outcomes_sub.add_parser("export", help="one line per alert of each labelled incident, oldest first; "
                                     "the account's password on stdin")
    export.add_argument("--as", dest="as_user", required=True, help="your account (nurse or physician)")
    export.add_argument("--since", type=iso_time, default=None, help="resolved at or after, ISO 8601 (no zone: UTC)")
    export.add_argument("--until", type=iso_time, default=None, help="resolved before, ISO 8601 (no zone: UTC)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(func=_export)
