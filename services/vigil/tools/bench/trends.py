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
import random
import tempfile
import time
from collections.abc import Callable, Iterator

from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.trends.model import SPARKLINE_VITALS, TrendStore, window
from vigil.shell.trends.sql_trends import SqlTrends

CHART_QUERIES = (("7d_1h", 7 * 86_400, 3600), ("7d_5min", 7 * 86_400, 300), ("24h_1min", 86_400, 60))


def _ward_rows(patients: int, now: float, every_s: float, seed: int) -> Iterator[tuple[list[ReadingRow], list[ScoreRow]]]:
    rng = random.Random(seed)
    for p in range(patients):
        patient, readings, scores = f"pt-{p:05d}", [], []
        t = now - 3600 + rng.random() * every_s
        while t < now:
            readings.append(ReadingRow(patient, f"ring-{p:05d}", t, int(t), hr=60 + rng.random() * 50, spo2=90 + rng.random() * 9,
                                       rr=12 + rng.random() * 10, temp=36.5 + rng.random(), news2=rng.randint(0, 6),
                                       news2_partial=rng.random() < 0.1))
            t += every_s
        readings += [ReadingRow(patient, f"cuff-{p:05d}", now - 3600 + k * 1800 + 7, k, sbp=110.0 + k, dbp=70.0) for k in range(2)]
        scores += [ScoreRow(patient, now - 3600 + m * 60 + 3, 0.1, rng.random(), "bench") for m in range(60)]
        yield readings, scores


def _chart_rows(now: float, days: float, rate: float, seed: int, batch: int = 5000) -> Iterator[list[ReadingRow]]:
    rng = random.Random(seed)
    count, start, rows = int(days * 86_400 * rate), now - days * 86_400, []
    for i in range(count):
        t = start + i / rate
        rows.append(ReadingRow("pt-chart", "ring-chart", t, i, hr=70 + 20 * math.sin(i / 5000) + rng.random() * 5,
                               spo2=95 + rng.random() * 3, rr=16.0, temp=37.0, news2=rng.randint(0, 3), news2_partial=False))
        if len(rows) == batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _percentiles(work: Callable[[], object], repeats: int) -> dict[str, float]:
    work()  # warm: first query plans, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2), "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)], 2)}


def _compare(rollup: Callable[[], object], raw: Callable[[], object], repeats: int) -> dict[str, object]:
    fast, slow = _percentiles(rollup, repeats), _percentiles(raw, repeats)
    return {"rollup": fast, "raw": slow, "raw_over_rollup_p95": round(slow["p95_ms"] / max(fast["p95_ms"], 1e-6), 1)}


def _queries(trends: TrendStore, raw_ward: Callable[[list[str], float], object], ids: list[str], now: float,
             repeats: int) -> dict[str, object]:
    result: dict[str, object] = {"ward": _compare(lambda: trends.ward(ids, now), lambda: raw_ward(ids, now), repeats)}
    for name, span, step in CHART_QUERIES:
        result[f"chart_{name}"] = _compare(lambda: trends.series("pt-chart", "hr", now - span, now, step),
                                           lambda: trends.raw_series("pt-chart", "hr", now - span, now, step),  # type: ignore[attr-defined]
                                           repeats)
    return result


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
