"""`vigil backup --out FILE` and `vigil restore --from FILE`: the embedded store's backup and restore.

The store is the one `vigil run` uses (VIGIL_DATABASE_URL, or vigil.sqlite under VIGIL_DATA_DIR).
For PostgreSQL (the scaled path) these commands refuse and point to pg_dump/pg_restore: the
procedures of each server's own tools are in docs/deployment.md, "Backup and restore".
Everything is created owner-only (umask 077): a backup holds every patient's vitals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _database(command: str) -> Path | None:
    from vigil.settings import VigilSettings
    from vigil.shell.stores.holder import sqlite_path

    database = sqlite_path(VigilSettings().sqlite_url())
    if database is None:
        print(f"vigil {command}: the store is not a SQLite file; for PostgreSQL use pg_dump/pg_restore "
              "(docs/deployment.md, \"Backup and restore\")", file=sys.stderr)
    return database


def _backup(args: argparse.Namespace) -> int:
    from vigil.shell.stores.backup import BackupFailed, take_backup

    database = _database("backup")
    if database is None:
        return 2
    os.umask(0o077)
    try:
        manifest = take_backup(database, Path(args.out).resolve(), compress=args.compress, pages=args.pages,
                               pause_s=args.pause_ms / 1000)
    except (BackupFailed, OSError) as exc:
        print(f"vigil backup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"backup": args.out, **{k: manifest[k] for k in ("bytes", "pages", "copy_seconds", "seconds", "counts")}}))
    return 0


def _restore(args: argparse.Namespace) -> int:
    from vigil.shell.stores.holder import StoreInUse
    from vigil.shell.stores.restore import RestoreRefused, restore_backup

    database = _database("restore")
    if database is None:
        return 2
    os.umask(0o077)
    try:
        done = restore_backup(Path(args.source).resolve(), database)
    except (RestoreRefused, StoreInUse, OSError) as exc:
        print(f"vigil restore: refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser("backup", help="back up the embedded store (SQLite), also while `vigil run` ingests")
    backup.add_argument("--out", required=True, help="the backup file (refused if it exists); its manifest goes "
                        "next to it as FILE.manifest.json")
    backup.add_argument("--compress", action="store_true", help="gzip the checked copy")
    backup.add_argument("--pages", type=int, default=1024, help="pages copied per step (default 1024: 4 MiB)")
    backup.add_argument("--pause-ms", type=float, default=2.0, help="pause between steps, ms (default 2)")
    backup.set_defaults(func=_backup)
    restore = sub.add_parser("restore", help="replace the embedded store with a checked backup (Vigil stopped)")
    restore.add_argument("--from", dest="source", required=True, help="a file written by `vigil backup`")
    restore.set_defaults(func=_restore)
