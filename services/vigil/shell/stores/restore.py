"""`vigil restore`: put a checked backup in place of the embedded store, atomically.

It refuses, and changes nothing, when:
- a running Vigil holds the store (its `<file>.in-use` lock, vigil.shell.stores.holder);
- the backup's manifest is missing or of another format, or the file's SHA-256 differs from it;
- the unpacked copy fails `PRAGMA integrity_check`, or its row counts differ from the manifest's.

Atomically: the copy is unpacked next to the store (same file system), checked, fsynced, and only
then renamed into place. The store it replaces is not deleted: it, with its WAL and shared-memory
files, is renamed into `<file>.replaced-<time>/` first (a WAL left beside the restored file would
be replayed into it), for the operator to delete once the restore is confirmed.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from vigil.shell.stores.backup import (
    FORMAT,
    GZIP_MAGIC,
    check_and_count,
    create_private,
    fsync_dir,
    fsync_file,
    manifest_path,
    sha256_of,
)
from vigil.shell.stores.holder import StoreHolder

SIDE_FILES = ("-wal", "-shm", "-journal")


class RestoreRefused(RuntimeError):
    """The backup, or the moment, is not fit for a restore; the store was left as it was."""


def read_manifest(backup: Path) -> dict[str, Any]:
    path = manifest_path(backup)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RestoreRefused(f"no readable manifest at {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("counts"), dict):
        raise RestoreRefused(f"{path} is not a {FORMAT} manifest")
    return manifest


def unpack(backup: Path, target: Path) -> None:
    """Copy (or gunzip) the backup into `target`, an owner-only file, durably."""
    with open(backup, "rb") as probe:
        packed = probe.read(2) == GZIP_MAGIC
    opener = gzip.open if packed else open
    with opener(backup, "rb") as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy, 1 << 20)
        copy.flush()
        os.fsync(copy.fileno())


def set_aside(database: Path) -> Path | None:
    """Move the store being replaced, and its side files, into a directory of their own."""
    present = [p for p in (database, *(Path(f"{database}{s}") for s in SIDE_FILES)) if p.exists()]
    if not present:
        return None
    aside = database.with_name(f"{database.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    aside.mkdir(mode=0o700)
    for path in present:  # the database first: a WAL never sits beside a file it does not belong to
        os.replace(path, aside / path.name)
    return aside


def restore_backup(backup: Path, database: Path) -> dict[str, Any]:
    """Replace the store at `database` with `backup`; returns what was done."""
    manifest = read_manifest(backup)
    if not backup.is_file():
        raise RestoreRefused(f"no backup file at {backup}")
    if sha256_of(backup) != manifest.get("sha256"):
        raise RestoreRefused(f"{backup} is not the file its manifest describes (SHA-256 differs)")
    database = database.resolve()
    holder = StoreHolder(database, exclusive=True)  # StoreInUse while a Vigil runs on it
    staging = database.with_name(f".{database.name}.restoring-{os.getpid()}")
    try:
        create_private(staging)
        unpack(backup, staging)
        verdict, counts = check_and_count(staging)
        Path(f"{staging}-journal").unlink(missing_ok=True)
        if verdict != "ok":
            raise RestoreRefused(f"the backup fails integrity_check: {verdict[:500]}")
        if counts != manifest["counts"]:
            differ = sorted(t for t in set(counts) | set(manifest["counts"]) if counts.get(t) != manifest["counts"].get(t))
            raise RestoreRefused(f"row counts differ from the manifest in: {', '.join(differ)}")
        fsync_file(staging)
        aside = set_aside(database)
        os.replace(staging, database)
        fsync_dir(database.parent)
        return {"restored": str(database), "from": str(backup), "counts": counts, "created_at": manifest.get("created_at"),
                "replaced_kept_in": None if aside is None else str(aside)}
    finally:
        staging.unlink(missing_ok=True)
        holder.release()
