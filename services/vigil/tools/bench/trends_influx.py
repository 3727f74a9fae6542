"""`vigil bench trends --store influx`: the same datasets and queries on the real InfluxDB.

A fresh bucket (deleted afterwards) on `VIGIL_INFLUX_URL`; raw points written as the processor
writes them; `rollup_1m` built by the task's own Flux over the data's range (`InfluxRollups.rebuild`),
whose time is reported too: the last 15 minutes of the ward rebuilt is what the task does each
minute. The raw-scan ward: each vital's last point (the storage engine's) plus the last hour's
sparklines from the raw points, aggregated per device series by the storage engine.

With `VIGIL_DATABASE_URL` set (`--store influx`), the ward is also written to PostgreSQL (a schema of
its own, dropped afterwards) the way the processor stores a batch (`SqlStore.write`: readings,
scores, and with them `vital_latest` and `vital_rollups`), and the scaled path's `HybridTrends`
(ward from PostgreSQL, charts from InfluxDB) is timed in the same run as the InfluxDB-only ward
(`ward_influx`, the store before it) and the raw scan. `influx_latest_30d` and `influx_latest_1h`
take the InfluxDB ward apart: its `latest` alone as it is, and over a one-hour range (what a
narrower Flux range would give at best, dropping patients silent longer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from vigil.settings import VigilSettings
from vigil.shell.stores.influx import InfluxSeriesWriter, line_for, score_line
from vigil.shell.trends.influx_rollup import InfluxRollups, flux_string, flux_time
from vigil.shell.trends import influx_trends
from vigil.shell.trends.hybrid_trends import HybridTrends
from vigil.shell.trends.influx_trends import InfluxTrends, _patients_regex
from vigil.shell.trends.model import SPARKLINE_VITALS, window
from vigil.tools.bench.trends_data import _chart_rows, _compare, _percentiles, _queries, _ward_rows


def _raw_ward(trends: InfluxTrends) -> Callable[[list[str], float], object]:
    def raw_ward(ids: list[str], now: float) -> object:
        low, high = window(now - 3600, now, 300)
        fields = " or ".join(f'r._field == "{v}"' for v in SPARKLINE_VITALS)
        source = (f"from(bucket: {flux_string(trends.bucket)})\n  |> range(start: {flux_time(low)}, stop: {flux_time(high)})\n"
                  f"  |> filter(fn: (r) => r._measurement == \"vitals\" and r.patient_id =~ {_patients_regex(ids)} and ({fields}))")
        lines = []
        for fn in ("min", "max", "sum", "count"):
            flux = (f"{source}\n  |> aggregateWindow(every: 5m, fn: {fn}, timeSrc: \"_start\", createEmpty: false)\n"
                    "  |> keep(columns: [\"patient_id\", \"_time\", \"_field\", \"_value\"])")
            lines.append(list(trends._rows(flux, ("patient_id", "_time", "_field", "_value"))))
        return trends.latest(ids), lines
    return raw_ward


def bench_influx(patients: int, days: float, rate: float, ward_every_s: float, repeats: int, seed: int) -> dict[str, object]:
    from influxdb_client import InfluxDBClient

    settings = VigilSettings()
    now = math.floor(time.time() / 60) * 60
    client = InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org, timeout=300_000)
    bucket = client.buckets_api().create_bucket(bucket_name=f"bench-trends-{int(time.time())}", org=settings.influx_org)
    writer = InfluxSeriesWriter(settings.influx_url, settings.influx_token, settings.influx_org, bucket.name)
    try:
        started, rows, lines = time.perf_counter(), 0, []
        for readings, scores in _ward_rows(patients, now, ward_every_s, seed):
            lines += [line_for(row) for row in readings] + [score_line(row) for row in scores]
            rows += len(readings)
            if len(lines) >= 20_000:
                writer.write_now(lines)
                lines = []
        writer.write_now(lines)
        chart = 0
        for batch in _chart_rows(now, days, rate, seed, batch=20_000):
            writer.write_now([line_for(row) for row in batch])
            chart += len(batch)
        write_s = time.perf_counter() - started
        rollups = InfluxRollups(client, settings.influx_org, bucket.name)
        started = time.perf_counter()
        rollups.rebuild(now - days * 86_400, now)
        rebuild_s = time.perf_counter() - started
        started = time.perf_counter()
        rollups.rebuild(now - 900, now)  # what the task does each minute (15 min of every patient)
        task_run_s = time.perf_counter() - started
        trends = InfluxTrends(client, settings.influx_org, bucket.name)
        ids = [f"pt-{p:05d}" for p in range(patients)]
        result: dict[str, object] = {
            "store": "influx", "ward_readings": rows, "chart_readings": chart, "write_s": round(write_s, 1),
            "rollup_rebuild_all_s": round(rebuild_s, 1), "rollup_task_run_15min_s": round(task_run_s, 2)}
        if settings.database_url:
            result.update(_hybrid(settings.database_url, trends, ids, now, patients, ward_every_s, repeats, seed))
        else:
            result.update(_queries(trends, _raw_ward(trends), ids, now, repeats))
        return result
    finally:
        writer.close()
        client.buckets_api().delete_bucket(bucket)
        client.close()


def _hybrid(url: str, influx: InfluxTrends, ids: list[str], now: float, patients: int, ward_every_s: float,
            repeats: int, seed: int) -> dict[str, object]:
    """The ward written to PostgreSQL as the processor stores it, then every ward variant timed in one run."""
    import uuid

    from sqlalchemy import create_engine, text

    from vigil.shell.stores.sql import SqlStore, WriteBatch
    from vigil.shell.trends.sql_trends import SqlTrends

    schema = "bench_trends_" + uuid.uuid4().hex[:8]
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    store = SqlStore(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    try:
        started, rows = time.perf_counter(), 0
        for readings, scores in _ward_rows(patients, now, ward_every_s, seed):
            for i in range(0, len(readings), 500):  # the processor's batches are of this order
                store.write(WriteBatch(readings=readings[i:i + 500], scores=scores if i == 0 else []))
            rows += len(readings)
        pg_write_s = time.perf_counter() - started
        hybrid = HybridTrends(SqlTrends(store.engine), influx)
        result: dict[str, object] = {"postgres_ward_write_s": round(pg_write_s, 1),
                                     "postgres_ward_readings_per_s": round(rows / pg_write_s)}
        result.update(_queries(hybrid, _raw_ward(influx), ids, now, repeats))
        result["ward_influx"] = _compare(lambda: hybrid.ward(ids, now), lambda: influx.ward(ids, now), repeats)
        # the overview's own question (the two sparklines it draws) against the full ward, same run
        result["ward_drawn"] = _compare(lambda: hybrid.ward(ids, now, ("hr", "spo2")), lambda: hybrid.ward(ids, now), repeats)
        result["influx_latest_30d"] = _percentiles(lambda: influx.latest(ids), repeats)
        narrow = influx_trends.LATEST_LOOKBACK_S
        try:
            influx_trends.LATEST_LOOKBACK_S = 3600
            result["influx_latest_1h"] = _percentiles(lambda: influx.latest(ids), repeats)
        finally:
            influx_trends.LATEST_LOOKBACK_S = narrow
        return result
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
