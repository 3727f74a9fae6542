"""Who holds the embedded store: a lock file next to the SQLite file, so `vigil restore` can tell
that a running Vigil has the database open and refuse to replace it under its feet.

Why a lock file and not SQLite's own locks: in WAL mode an idle runtime holds no database lock a
second process could test for (readers and the writer take theirs per transaction), so "try an
exclusive lock" would say "free" between two batches. `flock` on `<file>.in-use` is held for the
runtime's whole life and dropped by the kernel when the process dies, kill -9 included.

Every runtime takes it *shared* (several processes of one store never exclude each other, and a
test that starts two runtimes on one directory is unchanged); `vigil restore` takes it
*exclusive* and without waiting: it fails while any runtime holds it, and a runtime that starts
during a restore fails rather than open a half-replaced file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class StoreInUse(RuntimeError):
    """Another process holds the store (a running Vigil, or a restore in progress)."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".in-use")


class StoreHolder:
    """A held flock on the store's lock file; `release()` (or the process's end) lets it go."""

    def __init__(self, database: Path, *, exclusive: bool) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        self.path = lock_path(database)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            holder = "a running Vigil holds it" if exclusive else "a restore is replacing it"
            raise StoreInUse(f"{database} is in use: {holder} ({self.path})") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def hold_store(url: str) -> StoreHolder | None:
    """A runtime's shared hold on its SQLite store (None when the store is not a SQLite file)."""
    database = sqlite_path(url)
    return None if database is None else StoreHolder(database, exclusive=False)
