"""`vigil backup`: a consistent copy of the embedded store, taken while Vigil runs and ingests.

How it stays out of the writer's way. The copy is SQLite's online backup API
(`sqlite3.Connection.backup`), page by page, `pages` at a step with a short pause between steps
so a copy of gigabytes never hogs the disk or a core in one go. Two facts of SQLite shape it:

- The backup API restarts from page one whenever another connection writes the source between
  two steps. Vigil writes every few milliseconds while it ingests, so a plain paged backup would
  restart for ever. The copy therefore runs inside one read transaction opened first (`BEGIN`
  and a read): in WAL mode that pins one snapshot, the steps all read it, and nothing restarts.
- In WAL mode a reader never blocks the writer: Vigil's writer thread keeps committing to the WAL
  while the snapshot is read. What the reader does hold back is the checkpoint (the WAL grows
  during the copy and is folded into the file after it); `vigil bench backup` measures what
  that costs the ingest.

Every reading acknowledged before the snapshot was committed before it (Vigil acknowledges only
stored batches), so the copy holds every reading acknowledged before the backup began.

The file is created owner-only (0600), switched to a self-contained rollback-journal file,
checked (`PRAGMA integrity_check`) and counted table by table; the counts, the check, the
file's SHA-256 and Vigil's version go into a manifest next to it (`<file>.manifest.json`), which
`vigil restore` checks before it replaces anything. `compress` gzips the checked copy.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = "vigil-sqlite-backup/1"
GZIP_MAGIC = b"\x1f\x8b"


class BackupFailed(RuntimeError):
    """The copy could not be taken, or failed its own check: no backup file is left behind."""


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".manifest.json")


def create_private(path: Path) -> None:
    """An empty file only its owner can read (refuses to overwrite one that exists)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_and_count(path: Path) -> tuple[str, dict[str, int]]:
    """`PRAGMA integrity_check`'s verdict ("ok" when sound) and the rows of every table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        verdict = "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        if verdict != "ok":
            return verdict, {}
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return verdict, {table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) for table in tables}
    except sqlite3.DatabaseError as exc:  # not a database at all
        return f"not a SQLite database: {exc}", {}
    finally:
        conn.close()


def copy_snapshot(database: Path, target: Path, pages: int, pause_s: float,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Copy one snapshot of `database` into `target`, `pages` at a time; returns the page count."""
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30, isolation_level=None)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot is taken here

        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(remaining, total)
            if remaining and pause_s > 0:
                time.sleep(pause_s)  # let the writer and the disk breathe between steps

        source.backup(copy, pages=pages, progress=step)
        source.execute("COMMIT")
        # The copy inherits the source's WAL mode: make it one self-contained file.
        copy.execute("PRAGMA journal_mode=DELETE")
        return int(copy.execute("PRAGMA page_count").fetchone()[0])
    finally:
        copy.close()
        source.close()


def vigil_version() -> str:
    try:
        return metadata.version("vigil-health")
    except metadata.PackageNotFoundError:
        return "unknown"


def take_backup(database: Path, out: Path, *, compress: bool = False, pages: int = 1024, pause_s: float = 0.002,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Back up the SQLite store at `database` into `out` (+ its manifest); returns the manifest."""
    if not database.is_file():
        raise BackupFailed(f"no store at {database}")
    if out.exists() or manifest_path(out).exists():
        raise BackupFailed(f"{out} (or its manifest) exists already: choose another name")
    started, began = time.perf_counter(), time.time()
    partial = out.with_name(out.name + ".partial")
    packed = out.with_name(out.name + ".gz-partial")
    try:
        create_private(partial)
        page_count = copy_snapshot(database, partial, pages, pause_s, progress)
        copied_s = time.perf_counter() - started  # the snapshot is held this long; the rest reads the copy
        verdict, counts = check_and_count(partial)
        if verdict != "ok":
            raise BackupFailed(f"the copy failed integrity_check: {verdict[:500]}")
        fsync_file(partial)
        if compress:
            create_private(packed)
            with open(partial, "rb") as raw, gzip.open(packed, "wb", compresslevel=6) as gz:
                shutil.copyfileobj(raw, gz, 1 << 20)
            fsync_file(packed)
            partial.unlink()
            os.replace(packed, out)
        else:
            os.replace(partial, out)
        manifest = {
            "format": FORMAT, "vigil_version": vigil_version(),
            "created_at": datetime.fromtimestamp(began, timezone.utc).isoformat(), "created_t": began,
            "source": str(database), "file": out.name, "compressed": compress, "bytes": out.stat().st_size,
            "sha256": sha256_of(out), "pages": page_count, "integrity_check": verdict, "counts": counts,
            "copy_seconds": round(copied_s, 3), "seconds": round(time.perf_counter() - started, 3),
        }
        write_private_json(manifest_path(out), manifest)
        fsync_dir(out.parent)
        return manifest
    except BaseException:
        for leftover in (partial, packed, Path(f"{partial}-journal")):
            leftover.unlink(missing_ok=True)
        raise


def write_private_json(path: Path, value: dict[str, Any]) -> None:
    """Write JSON owner-only and durably: a temporary file, fsync, rename."""
    temporary = path.with_name(path.name + ".partial")
    create_private(temporary)
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
