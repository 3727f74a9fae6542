"""`vigil backup --out PATH` and `vigil restore --from PATH`: backup and restore of Vigil's stores.

The store is the one the settings name (VIGIL_DATABASE_URL, or vigil.sqlite under VIGIL_DATA_DIR).
SQLite (the embedded runtime): one checked file, taken with SQLite's online backup API.
PostgreSQL (the scaled path): a directory with a pg_dump of the database and InfluxDB's backup of
the vitals bucket (`tools/scaled_backup.py`). docs/deployment.md, "Backup and restore".
Everything is created owner-only (umask 077): a backup holds every patient's vitals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _database() -> Path | None:
    """The SQLite file of the embedded store; None when the store is PostgreSQL (the scaled path)."""
    from vigil.settings import VigilSettings
    from vigil.shell.stores.holder import sqlite_path

    return sqlite_path(VigilSettings().sqlite_url())


def _scaled(command: str, args: argparse.Namespace) -> int:
    from vigil.settings import VigilSettings
    from vigil.shell.stores.influx_backup import InfluxBackupFailed
    from vigil.shell.stores.pg_backup import PostgresBackupFailed
    from vigil.tools.scaled_backup import restore_scaled_backup, take_scaled_backup

    settings = VigilSettings()
    if not (settings.database_url or "").startswith("postgresql"):
        print(f"vigil {command}: the store is neither a SQLite file nor PostgreSQL", file=sys.stderr)
        return 2
    try:
        if command == "backup":
            done = take_scaled_backup(settings, Path(args.out).resolve())
        else:
            done = restore_scaled_backup(settings, Path(args.source).resolve())
    except (InfluxBackupFailed, PostgresBackupFailed, OSError, ValueError) as exc:
        print(f"vigil {command}: {'refused or failed' if command == 'restore' else 'failed'}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


def _backup(args: argparse.Namespace) -> int:
    from vigil.shell.stores.backup import BackupFailed, take_backup

    os.umask(0o077)
    database = _database()
    if database is None:
        return _scaled("backup", args)
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

    os.umask(0o077)
    database = _database()
    if database is None:
        return _scaled("restore", args)
    try:
        done = restore_backup(Path(args.source).resolve(), database)
    except (RestoreRefused, StoreInUse, OSError) as exc:
        print(f"vigil restore: refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser("backup", help="back up the store while Vigil runs: the embedded SQLite file, "
                            "or the scaled path's PostgreSQL and InfluxDB bucket")
    backup.add_argument("--out", required=True, help="SQLite: the backup file, its manifest next to it as "
                        "FILE.manifest.json; scaled path: a new directory (refused if either exists)")
    backup.add_argument("--compress", action="store_true", help="gzip the checked copy")
    backup.add_argument("--pages", type=int, default=1024, help="pages copied per step (default 1024: 4 MiB)")
    backup.add_argument("--pause-ms", type=float, default=2.0, help="pause between steps, ms (default 2)")
    backup.set_defaults(func=_backup)
    restore = sub.add_parser("restore", help="restore a checked backup, Vigil stopped: replaces the "
                             "SQLite file, or loads an empty PostgreSQL database and a new InfluxDB bucket")
    restore.add_argument("--from", dest="source", required=True, help="a file or directory written by `vigil backup`")
    restore.set_defaults(func=_restore)
