"""`vigil bench trends --store influx`: the same datasets and queries on the real InfluxDB.

A fresh bucket (deleted afterwards) on `VIGIL_INFLUX_URL`; raw points written as the processor
writes them; `rollup_1m` built by the task's own Flux over the data's range (`InfluxRollups.rebuild`),
whose time is reported too: the last 15 minutes of the ward rebuilt is what the task does each
minute. The raw-scan ward: each vital's last point (the storage engine's) plus the last hour's
sparklines from the raw points, aggregated per device series by the storage engine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from vigil.settings import VigilSettings
from vigil.shell.stores.influx import InfluxSeriesWriter, line_for, score_line
from vigil.shell.trends.influx_rollup import InfluxRollups, flux_string, flux_time
from vigil.shell.trends.influx_trends import InfluxTrends, _patients_regex
from vigil.shell.trends.model import SPARKLINE_VITALS, window
from vigil.tools.bench.trends_data import _chart_rows, _queries, _ward_rows


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
        return {"store": "influx", "ward_readings": rows, "chart_readings": chart, "write_s": round(write_s, 1),
                "rollup_rebuild_all_s": round(rebuild_s, 1), "rollup_task_run_15min_s": round(task_run_s, 2),
                **_queries(trends, _raw_ward(trends), [f"pt-{p:05d}" for p in range(patients)], now, repeats)}
    finally:
        writer.close()
        client.buckets_api().delete_bucket(bucket)
        client.close()
