"""`vigil bench backup`: does a backup of a large embedded store stall the ingest? (issue 15, point 5)

It builds a store of `patient_days` days of readings at `per_minute` readings a minute per patient
(10,000 patient-days at 1 a minute: 14.4 million readings), then ingests through the embedded
runtime's own writer lane (vigil.shell.stores.writer.BackgroundWriter, one SqlStore transaction a
batch) at a steady `rate` readings a second, in three phases of the same run:

1. baseline: ingest alone, `phase_s` seconds;
2. backup: the same ingest while `vigil backup` (the real command, in its own process, as an
   operator runs it) copies the store; the phase lasts until the backup has ended and
   `phase_s` more seconds (the WAL held back during the copy is checkpointed then);
3. baseline again, `phase_s` seconds (the machine is shared: two baselines bracket the noise).

A batch's store latency is from the moment it was due to its commit: a blocked writer shows as
latency, since later batches queue behind it. The stall is the largest gap between two
consecutive commits. Figures per phase, and the backup phase's as a ratio of the baselines'.
Then the backup is restored (`vigil restore`, into a fresh directory) and compared row for row
with the source: every row of the built store identical, and the live rows a prefix of those
committed (nothing invented, nothing missing before the snapshot).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vigil.shell.observability.percentile import percentile
from vigil.shell.stores.rows import ReadingRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.writer import BackgroundWriter

T0 = 1_750_000_000.0
COLUMNS = ReadingRow._fields


def build(db: Path, patient_days: int, per_minute: float, patients: int) -> int:
    """Fill a fresh store with `patient_days` of readings (plausible vitals, NEWS2 and flags)."""
    SqlStore(f"sqlite:///{db}").close()  # the schema, as Vigil makes it
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO readings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    days = patient_days / patients
    per_patient = int(days * 1440 * per_minute)
    step, chance, total = 60.0 / per_minute, random.Random(15), 0
    for p in range(patients):
        rows = []
        for i in range(per_patient):
            hr, spo2 = 60 + chance.random() * 40, 92 + chance.random() * 7
            rows.append((f"pt-{p:05d}", f"wr-{p:05d}", T0 + i * step, i, round(hr, 1), round(spo2, 1),
                         round(12 + chance.random() * 8, 1), round(36.2 + chance.random(), 2), None, None, None,
                         round(chance.random() * 0.05, 3), 80.0, False, "A", "", int(spo2 < 94), False))
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        total += len(rows)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return total


class SteadyIngest:
    """Batches of `rate / batches_per_s` live readings, due every 1/batches_per_s seconds, on the writer lane."""

    def __init__(self, store: SqlStore, writer: BackgroundWriter, rate: float, batches_per_s: float) -> None:
        self.store, self.writer = store, writer
        self.size, self.every = max(1, int(rate / batches_per_s)), 1.0 / batches_per_s
        self.n = 0
        # New keys in every run: a second run on the same store must insert, not ignore its rows.
        self.seq0 = int(time.time()) * 1_000_000
        self.t0 = T0 + self.seq0
        self.committed: list[tuple[float, float, int]] = []  # (due, committed, batch number), perf_counter
        self.lock = threading.Lock()

    def run(self, until: threading.Event) -> None:
        start = time.perf_counter()
        k = 0
        while not until.is_set():
            due = start + k * self.every
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            batch = WriteBatch(readings=[ReadingRow(f"live-{j % 100:03d}", f"wr-live-{j % 100:03d}", self.t0 + self.n + j,
                                                    self.seq0 + self.n + j, 75.0, 97.0, 16.0) for j in range(self.size)])
            self.n += self.size
            number = k
            future = self.writer.call(lambda b=batch: self.store.write(b))
            future.add_done_callback(lambda f, d=due, i=number: self._done(d, i))
            k += 1

    def _done(self, due: float, number: int) -> None:
        with self.lock:
            self.committed.append((due, time.perf_counter(), number))

    def phase(self, since: float, until: float) -> dict[str, float]:
        with self.lock:
            rows = sorted(c for c in self.committed if since <= c[0] < until)
        latencies = [(done - due) * 1000 for due, done, _ in rows]
        commits = sorted(done for _, done, _ in rows)
        gaps = [(b - a) * 1000 for a, b in zip(commits, commits[1:])]
        return {"batches": len(rows), "p50_ms": round(percentile(latencies, 0.5), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
                "max_gap_ms": round(max(gaps), 2)}


def phases(store: SqlStore, db: Path, out: Path, rate: float, batches_per_s: float, phase_s: float,
           pages: int, pause_ms: float) -> dict[str, Any]:
    writer = BackgroundWriter(store)
    ingest, stop = SteadyIngest(store, writer, rate, batches_per_s), threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    thread.start()
    env = dict(os.environ, VIGIL_DATA_DIR=str(db.parent), VIGIL_DATABASE_URL="")
    env.pop("VIGIL_DATABASE_URL")
    a = time.perf_counter()
    time.sleep(phase_s)
    b = time.perf_counter()
    made = subprocess.run([sys.executable, "-m", "vigil.cli", "backup", "--out", str(out), "--pages", str(pages),
                           "--pause-ms", str(pause_ms)], env=env, capture_output=True, text=True)
    backup_end = time.perf_counter()
    if made.returncode != 0:
        raise RuntimeError(f"vigil backup failed: {made.stderr}")
    wal_peak = Path(f"{db}-wal").stat().st_size if Path(f"{db}-wal").exists() else 0
    time.sleep(phase_s)
    c = time.perf_counter()
    time.sleep(phase_s)
    d = time.perf_counter()
    stop.set()
    thread.join()
    writer.close()
    result = {"baseline": ingest.phase(a, b), "backup": ingest.phase(b, c), "baseline_after": ingest.phase(c, d),
              "backup_wall_s": round(backup_end - b, 2), "wal_file_bytes_after_backup": wal_peak,
              "backup_cli": json.loads(made.stdout)}
    base = {k: max(result["baseline"][k], result["baseline_after"][k]) for k in ("p99_ms", "max_ms", "max_gap_ms")}
    result["ratio_vs_worse_baseline"] = {k: round(result["backup"][k] / base[k], 2) for k in base}
    return result


def verify_restore(db: Path, out: Path, work: Path) -> dict[str, Any]:
    """`vigil restore` into a fresh directory, then the restored readings against the source's."""
    fresh = work / "restored"
    env = dict(os.environ, VIGIL_DATA_DIR=str(fresh))
    env.pop("VIGIL_DATABASE_URL", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vigil.cli", "restore", "--from", str(out)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vigil restore failed: {done.stderr}")
    restore_s = time.perf_counter() - started
    conn = sqlite3.connect(fresh / "vigil.sqlite")
    conn.execute("ATTACH DATABASE ? AS source", (f"file:{db}?mode=ro",))
    built = "patient_id NOT LIKE 'live-%'"
    missing = conn.execute(f"SELECT count(*) FROM (SELECT * FROM source.readings WHERE {built} "
                           f"EXCEPT SELECT * FROM main.readings WHERE {built})").fetchone()[0]
    invented = conn.execute("SELECT count(*) FROM (SELECT * FROM main.readings EXCEPT SELECT * FROM source.readings)").fetchone()[0]
    live_restored, live_max_seq = conn.execute(
        "SELECT count(*), max(seq) FROM main.readings WHERE patient_id LIKE 'live-%'").fetchone()
    live_gaps = conn.execute("SELECT count(*) FROM source.readings WHERE patient_id LIKE 'live-%' AND seq <= ?",
                             (live_max_seq or -1,)).fetchone()[0] - live_restored
    rows = conn.execute("SELECT count(*) FROM main.readings").fetchone()[0]
    conn.close()
    return {"restore_s": round(restore_s, 1), "rows_restored": rows, "built_rows_missing": missing,
            "rows_not_in_source": invented, "live_rows_restored": live_restored,
            "live_rows_missing_before_snapshot": live_gaps}


def bench_backup(patient_days: int = 10_000, per_minute: float = 1.0, patients: int = 1_000, rate: float = 1_000.0,
                 batches_per_s: float = 20.0, phase_s: float = 10.0, pages: int = 1024, pause_ms: float = 2.0,
                 work_dir: str | None = None, build_only: bool = False) -> dict[str, Any]:
    """`build_only`: build the store in `work_dir` and stop; a later run with the same `work_dir`
    and sizes measures on it (the build is long and needs no quiet machine; the measure does)."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="vigil-bench-backup-"))
    db, built = work / "data" / "vigil.sqlite", work / "built.json"
    wanted = {"patient_days": patient_days, "per_minute": per_minute, "patients": patients}
    if built.exists() and json.loads(built.read_text())["wanted"] == wanted:
        made = json.loads(built.read_text())
        rows, built_s = made["rows"], made["build_s"]
    else:
        db.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rows = build(db, patient_days, per_minute, patients)
        built_s = time.perf_counter() - started
        built.write_text(json.dumps({"wanted": wanted, "rows": rows, "build_s": round(built_s, 1)}))
    size = db.stat().st_size
    if build_only:
        return {**wanted, "rows_built": rows, "build_s": round(built_s, 1), "store_bytes": size, "work_dir": str(work)}
    store = SqlStore(f"sqlite:///{db}")
    out = work / f"vigil.backup.{int(time.time())}"
    try:
        measured = phases(store, db, out, rate, batches_per_s, phase_s, pages, pause_ms)
    finally:
        store.close()
    checked = verify_restore(db, out, work)
    return {"patient_days": patient_days, "per_minute": per_minute, "rows_built": rows, "build_s": round(built_s, 1),
            "store_bytes": size, "ingest_rate": rate, "batches_per_s": batches_per_s, "pages_per_step": pages,
            "pause_ms": pause_ms, **measured, "restore": checked, "work_dir": str(work)}
