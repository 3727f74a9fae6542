"""`vigil bench trends`: the ward overview and a patient's 7-day chart, from rollups and from a raw scan.

Two datasets, in a fresh SQLite file (through `SqlStore.write`, rollups and all) and, with
`--store influx|both`, in a fresh bucket of the real InfluxDB (`VIGIL_INFLUX_*`; line protocol as
the processor writes it, then the rollup Flux over the range, as the task would):

- the ward: `patients` patients, the last hour at one reading every `ward_every_s` seconds, a
  cuff blood pressure every 30 min, a model score a minute;
- the chart: one patient, `days` days at `rate` readings a second (1 Hz: 604,800 readings).

Then, `repeats` times each, timed from call to data in Python objects: `ward(patients)` against
the raw-scan equivalent (latest values in the last 6 h and the last hour's sparklines straight from
the readings), and `series` of the chart patient at 7 d / 1 h, 7 d / 5 min and 24 h / 1 min against
`raw_series`. p50 and p95 in ms, and raw p95 / rollup p95 (the ratio).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable

from vigil.shell.stores.rows import ReadingRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.trends.model import SPARKLINE_VITALS, window
from vigil.shell.trends.sql_trends import SqlTrends
from vigil.tools.bench.trends_data import _chart_rows, _queries, _ward_rows


def _sqlite_raw_ward(store: SqlStore) -> Callable[[list[str], float], object]:
    """The ward from `readings` alone: each vital's newest value in the last 6 h (SQLite takes the
    row of max(t) for a bare column) and the last hour's 5-minute sparklines."""
    from sqlalchemy import bindparam, text

    latest = text("SELECT patient_id, vital, max(t), value FROM (" + " UNION ALL ".join(
        f"SELECT patient_id, '{v}' AS vital, t, {v} AS value FROM readings WHERE patient_id IN :ids AND t >= :since "
        f"AND {v} IS NOT NULL" for v in ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2")) + ") GROUP BY patient_id, vital"
                  ).bindparams(bindparam("ids", expanding=True))
    columns = ", ".join(f"min({v}), max({v}), sum({v}), count({v})" for v in SPARKLINE_VITALS)
    lines = text(f"SELECT patient_id, CAST(t AS INTEGER) / 300 * 300 AS b, {columns} FROM readings "
                 "WHERE patient_id IN :ids AND t >= :low GROUP BY patient_id, b").bindparams(bindparam("ids", expanding=True))

    def raw_ward(ids: list[str], now: float) -> object:
        with store.engine.connect() as conn:
            found = conn.execute(latest, {"ids": ids, "since": now - 6 * 3600}).all()
            low, _ = window(now - 3600, now, 300)
            return found, conn.execute(lines, {"ids": ids, "low": low}).all()
    return raw_ward


def _plain_insert_s(url: str, now: float, days: float, rate: float, seed: int) -> float:
    """The chart's readings written as before rollups: one executemany of INSERT OR IGNORE a batch."""
    store = SqlStore(url)
    sql = (f"INSERT OR IGNORE INTO readings ({', '.join(ReadingRow._fields)}) "
           f"VALUES ({', '.join('?' for _ in ReadingRow._fields)})")
    started = time.perf_counter()
    for batch in _chart_rows(now, days, rate, seed):
        with store.engine.begin() as conn:
            conn.exec_driver_sql(sql, list(map(tuple, batch)))
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def bench_sqlite(patients: int, days: float, rate: float, ward_every_s: float, repeats: int, seed: int) -> dict[str, object]:
    now = math.floor(time.time() / 60) * 60
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/vigil.sqlite")
        started, rows = time.perf_counter(), 0
        for readings, scores in _ward_rows(patients, now, ward_every_s, seed):
            store.write(WriteBatch(readings=readings, scores=scores))
            rows += len(readings)
        ward_s = time.perf_counter() - started
        started, chart = time.perf_counter(), 0
        for batch in _chart_rows(now, days, rate, seed):
            store.write(WriteBatch(readings=batch))
            chart += len(batch)
        chart_s = time.perf_counter() - started
        plain_s = _plain_insert_s(f"sqlite:///{tmp}/plain.sqlite", now, days, rate, seed)
        result = {"store": "sqlite", "ward_readings": rows, "ward_write_s": round(ward_s, 1),
                  "chart_readings": chart, "chart_write_s": round(chart_s, 1),
                  "chart_write_readings_per_s_with_rollups": round(chart / chart_s),
                  "chart_write_readings_per_s_without_rollups": round(chart / plain_s),
                  **_queries(SqlTrends(store.engine), _sqlite_raw_ward(store), [f"pt-{p:05d}" for p in range(patients)],
                             now, repeats)}
        store.close()
    return result


def bench_trends(*, store: str = "sqlite", patients: int = 1000, days: float = 7.0, rate: float = 1.0,
                 ward_every_s: float = 5.0, repeats: int = 40, seed: int = 11) -> dict[str, object]:
    results: list[dict[str, object]] = []
    if store in ("sqlite", "both"):
        results.append(bench_sqlite(patients, days, rate, ward_every_s, repeats, seed))
    if store in ("influx", "both"):
        from vigil.tools.bench.trends_influx import bench_influx

        results.append(bench_influx(patients, days, rate, ward_every_s, repeats, seed))
    return {"bench": "trends", "patients": patients, "chart_days": days, "chart_rate_hz": rate,
            "ward_every_s": ward_every_s, "repeats": repeats, "results": results}
