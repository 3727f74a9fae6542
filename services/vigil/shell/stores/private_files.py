"""Owner-only files and directories, whatever the umask (issue 15, "Data at rest").

Vigil's data directory and SQLite files hold vitals, message bodies, phone numbers and raw dead
letters: nobody but the account Vigil runs as should read them. Creating with a mode is not
enough (the mode is masked by the umask, and an existing file keeps its own), so each path is
created owner-only and then, if it is looser than that, tightened, with a WARNING naming it.

SQLite creates a database's -wal, -shm and -journal files with the permissions of the database
file itself, so a database created 0600 keeps its companions 0600; any found looser are tightened
too (a store made by an earlier version).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("vigil.store")

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current != mode:
        os.chmod(path, mode)
        log.warning("permissions tightened to owner-only", extra={"path": str(path), "was": f"{current:o}",
                                                                  "now": f"{mode:o}"})


def private_dir(path: Path | str) -> Path:
    """`path` as a directory only its owner can enter (0700), made if missing (with its parents:
    those are left as they are, they may be shared)."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path | str) -> Path:
    """`path` as a file only its owner can read or write (0600), created empty if missing."""
    path = Path(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def write_private(path: Path | str, text: str) -> Path:
    """Write `text` to an owner-only file (replacing what it held)."""
    path = private_file(path)
    path.write_text(text, encoding="utf-8")
    return path


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def protect_sqlite(url: str) -> None:
    """Before a SQLite store is opened: its file owner-only (created so, or tightened), and its
    companions tightened if present. Nothing for PostgreSQL (the server's own files)."""
    path = sqlite_path(url)
    if path is None:
        return
    if not path.parent.exists():
        private_dir(path.parent)  # made by Vigil: owner-only; an existing parent is the operator's
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, FILE_MODE)
