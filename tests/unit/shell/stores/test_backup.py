"""`vigil backup` and `vigil restore` on a real SQLite store (issue 15, point 5): the backup is one
snapshot even while a writer commits between its steps, owner-only, counted into its manifest;
every guard of the restore is tried (a store in use, a changed file, counts that differ from the
manifest, a file that fails integrity_check) and each leaves the store as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time

import pytest

from vigil.shell.stores.backup import BackupFailed, manifest_path, take_backup
from vigil.shell.stores.holder import StoreHolder, StoreInUse, hold_store
from vigil.shell.stores.restore import RestoreRefused, restore_backup
from vigil.shell.stores.rows import ReadingRow
from vigil.shell.stores.sql import SqlStore, WriteBatch

T = 1_760_000_000.0


def ward_store(path, readings: int = 20_000) -> SqlStore:
    store = SqlStore(f"sqlite:///{path}")
    rows = [ReadingRow(f"pt-{i % 50}", f"wr-{i % 50}", T + i, i, 70.0, 97.0, 16.0) for i in range(readings)]
    for start in range(0, readings, 5_000):
        store.write(WriteBatch(readings=rows[start:start + 5_000]))
    return store


def count(path, table: str = "readings") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def backed_up(tmp_path):
    """A store of 20,000 readings and its backup."""
    db = tmp_path / "data" / "vigil.sqlite"
    db.parent.mkdir()
    ward_store(db).close()
    out = tmp_path / "vigil.backup"
    take_backup(db, out, pages=16, pause_s=0)
    return db, out


def test_backup_while_a_writer_commits_between_steps_is_one_snapshot(tmp_path):
    db = tmp_path / "vigil.sqlite"
    store = ward_store(db)
    done, written = threading.Event(), []

    def ingest() -> None:  # commits between the backup's steps, as `vigil run` does
        n = 0
        while not done.is_set():
            store.write(WriteBatch(readings=[ReadingRow("pt-x", "wr-x", T + 10**6 + n + k, n + k) for k in range(20)]))
            n += 20
            written.append(n)
            time.sleep(0.001)

    writer = threading.Thread(target=ingest)
    writer.start()
    steps = []
    try:
        manifest = take_backup(db, tmp_path / "b", pages=4, pause_s=0.002, progress=lambda left, total: steps.append(left))
    finally:
        done.set()
        writer.join()
    during = len(written)  # batches committed while the copy ran (and a few after)
    assert len(steps) > 10 and during > 10, "a paged copy, with commits between its steps"
    assert manifest["integrity_check"] == "ok"
    assert 20_000 <= manifest["counts"]["readings"] == count(tmp_path / "b") <= count(db)
    for path in (tmp_path / "b", manifest_path(tmp_path / "b")):
        assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(manifest_path(tmp_path / "b").read_text())["sha256"] == hashlib.sha256(
        (tmp_path / "b").read_bytes()).hexdigest()
    store.close()


def test_compressed_backup_restores_row_for_row(tmp_path, backed_up):
    db, _ = backed_up
    out = tmp_path / "vigil.backup.gz"
    manifest = take_backup(db, out, compress=True, pause_s=0)
    assert out.read_bytes()[:2] == b"\x1f\x8b" and manifest["compressed"]
    conn = sqlite3.connect(db)
    before = set(conn.execute("SELECT * FROM readings"))
    conn.close()
    db.unlink()
    done = restore_backup(out, db)
    conn = sqlite3.connect(db)
    assert set(conn.execute("SELECT * FROM readings")) == before and done["counts"] == manifest["counts"]
    conn.close()
    assert db.stat().st_mode & 0o777 == 0o600


def test_backup_never_overwrites(backed_up):
    db, out = backed_up
    with pytest.raises(BackupFailed, match="exists"):
        take_backup(db, out)


def test_restore_refuses_while_vigil_holds_the_store(backed_up):
    db, out = backed_up
    running = hold_store(f"sqlite:///{db}")  # what EmbeddedRuntime holds while it lives
    with pytest.raises(StoreInUse, match="running Vigil"):
        restore_backup(out, db)
    running.release()
    assert restore_backup(out, db)["restored"] == str(db.resolve())


def test_vigil_cannot_start_while_a_restore_replaces_the_store(backed_up):
    db, _ = backed_up
    restoring = StoreHolder(db, exclusive=True)
    with pytest.raises(StoreInUse, match="restore"):
        hold_store(f"sqlite:///{db}")
    restoring.release()


def changed_in_place(out, offset: int, data: bytes, *, fix_sha: bool) -> None:
    with open(out, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    if fix_sha:  # the attacker (or the bit rot) also rewrote the manifest's checksum
        manifest = json.loads(manifest_path(out).read_text())
        manifest["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
        manifest_path(out).write_text(json.dumps(manifest))


def test_restore_refuses_a_changed_file(backed_up):
    db, out = backed_up
    changed_in_place(out, out.stat().st_size // 2, b"\xff" * 64, fix_sha=False)
    with pytest.raises(RestoreRefused, match="SHA-256"):
        restore_backup(out, db)
    assert count(db) == 20_000


def test_restore_refuses_a_file_failing_integrity_check(backed_up):
    db, out = backed_up
    page = 4096
    changed_in_place(out, out.stat().st_size - 3 * page + 8, b"\xa5" * 2_000, fix_sha=True)
    with pytest.raises(RestoreRefused, match="integrity_check"):
        restore_backup(out, db)
    assert count(db) == 20_000 and not list(db.parent.glob(".*restoring*"))


def test_restore_refuses_counts_that_differ_from_the_manifest(backed_up):
    db, out = backed_up
    manifest = json.loads(manifest_path(out).read_text())
    manifest["counts"]["readings"] += 1  # a backup cut short, or another backup's manifest
    manifest_path(out).write_text(json.dumps(manifest))
    with pytest.raises(RestoreRefused, match="readings"):
        restore_backup(out, db)
    assert count(db) == 20_000


def test_restore_without_its_manifest_is_refused(backed_up):
    db, out = backed_up
    manifest_path(out).unlink()
    with pytest.raises(RestoreRefused, match="manifest"):
        restore_backup(out, db)


def test_the_replaced_store_and_its_wal_are_set_aside_not_replayed(backed_up):
    db, out = backed_up
    wal = db.with_name(db.name + "-wal")
    conn = sqlite3.connect(db)  # a commit still in the WAL, as a kill -9 of Vigil leaves it
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO readings (patient_id, device_id, t, seq, flags) VALUES ('pt-new', 'wr-new', 1, 1, '')")
    conn.commit()
    left_behind = wal.read_bytes()
    conn.close()  # checkpoints and deletes the WAL: put it back, as the crash left it
    wal.write_bytes(left_behind)
    done = restore_backup(out, db)
    assert not wal.exists(), "no WAL beside the restored file"
    assert count(db) == 20_000, "the old WAL was not replayed into the restored file"
    aside = db.parent / done["replaced_kept_in"].split("/")[-1]
    assert sorted(p.name for p in aside.iterdir()) == ["vigil.sqlite", "vigil.sqlite-wal"]
    assert count(aside / "vigil.sqlite") == 20_001, "the replaced store, kept whole with its WAL"
