"""Data at rest (issue 15): the data directory, the SQLite file and its -wal/-shm are owner-only
whatever the umask; a store made looser (an earlier version, a copy) is tightened at start, logged."""

from __future__ import annotations

import logging
import os
import stat
from contextlib import contextmanager

import pytest

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.observability.logs import configure_logging
from vigil.shell.registry import Registry
from vigil.shell.stores.private_files import private_dir, private_file, sqlite_path
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.rows import ReadingRow


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def reading() -> ReadingRow:
    return ReadingRow("pt-1", "wr-1", 1_760_000_000.0, 1, 70.0, 97.0, None, None, None, None, None, None, None, None,
                      None, "", None, None)


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_the_embedded_runtime_makes_everything_owner_only(tmp_path, mask):
    data = tmp_path / "vigil-data"
    with umask(mask):
        runtime = EmbeddedRuntime(VigilSettings(data_dir=data, models_enabled=False), Registry())
        try:
            runtime.writer.write_and_wait(WriteBatch(readings=[reading()]))  # WAL mode: -wal and -shm now exist
            files = sorted(p.name for p in data.iterdir())
            assert {"vigil.sqlite", "vigil.sqlite-wal", "vigil.sqlite-shm"} <= set(files)
            assert mode(data) == 0o700
            assert {name: mode(data / name) for name in files} == {name: 0o600 for name in files}
        finally:
            runtime.writer.close()
            runtime.store.close()


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_a_store_opened_by_a_tool_is_owner_only_and_so_is_the_directory_it_made(tmp_path, mask):
    url = f"sqlite:///{tmp_path / 'new' / 'vigil.sqlite'}"
    with umask(mask):
        store = SqlStore(url)
        store.write(WriteBatch(readings=[reading()]))
        store.close()
    assert mode(tmp_path / "new") == 0o700
    for path in (tmp_path / "new").iterdir():
        assert mode(path) == 0o600, path.name


def test_an_existing_looser_store_is_tightened_at_start_and_logged(tmp_path, caplog):
    data = tmp_path / "vigil-data"
    with umask(0o000):
        store = SqlStore(f"sqlite:///{data / 'vigil.sqlite'}")
        store.write(WriteBatch(readings=[reading()]))
        store.close()
    os.chmod(data, 0o755)
    for name in ("vigil.sqlite", "vigil.sqlite-wal", "vigil.sqlite-shm"):
        (data / name).touch()
        os.chmod(data / name, 0o644)
    with caplog.at_level(logging.WARNING, logger="vigil.store"):
        runtime = EmbeddedRuntime(VigilSettings(data_dir=data, models_enabled=False), Registry())
        runtime.writer.close()
        runtime.store.close()
    tightened = {r.path: (r.was, r.now) for r in caplog.records  # type: ignore[attr-defined]
                 if r.getMessage() == "permissions tightened to owner-only"}
    assert tightened[str(data)] == ("755", "700")
    for name in ("vigil.sqlite", "vigil.sqlite-wal", "vigil.sqlite-shm"):
        assert tightened[str(data / name)] == ("644", "600")  # (SQLite removes the -wal and -shm at close)
        assert not (data / name).exists() or mode(data / name) == 0o600
    assert len(store_rows(data)) == 1  # tightened, not lost


def store_rows(data) -> list:
    store = SqlStore(f"sqlite:///{data / 'vigil.sqlite'}")
    try:
        return list(store.readings_for("pt-1"))
    finally:
        store.close()


def test_the_log_file_and_helpers_are_owner_only_under_a_permissive_umask(tmp_path):
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    with umask(0o000):
        configure_logging("INFO", path=str(tmp_path / "vigil.log"))
        nested = private_dir(tmp_path / "a" / "b")
        made = private_file(nested / "f")
    try:
        assert mode(tmp_path / "vigil.log") == 0o600
        assert mode(nested) == 0o700 and mode(made) == 0o600
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_only_sqlite_files_are_touched():
    assert sqlite_path("postgresql://u@h/db") is None
    assert sqlite_path("sqlite:///:memory:") is None and sqlite_path("sqlite://") is None
    assert str(sqlite_path("sqlite:////var/lib/vigil/vigil.sqlite")) == "/var/lib/vigil/vigil.sqlite"
