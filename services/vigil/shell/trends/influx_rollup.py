"""The scaled path's per-minute rollups: an InfluxDB task recomputes `rollup_1m` from the raw points.

Why a task rather than the processor workers: a worker sees a minute of a patient in pieces
(batches of 0.1 s, a rebalance in the middle, a replay after a crash), so a rollup it writes is
either partial or needs state that a rebalance loses; InfluxDB overwrites a point with the same
series and time, so it cannot add to one either. The task instead recomputes each whole minute
from the raw `vitals` and `scores` points, which are themselves idempotent: running it twice, on
a replayed stream, or after a late point has landed gives the same rollup. Nothing on the
processor's hot path changes.

The task runs every minute (10 s after it, for points in flight) over the last `lookback` (15 min
by default), so a point up to that late is rolled up within a minute. A point later than that (a
worker down for an hour, a backlog replayed) is rolled up by `rebuild(start, stop)` — the same
Flux over any range, run by `vigil trends rebuild` — after the backlog is in.

Points: `rollup_1m,patient_id=…,device_id=… hr_min=…,hr_max=…,hr_sum=…,hr_n=…i,… <minute start>`
(per device, so the storage engine computes each aggregate itself: pushdown); risk has no device
tag; readers merge devices (`InfluxTrends`). NEWS2 fields are integers, as in `vitals`.
"""

from __future__ import annotations

from datetime import datetime, timezone

ROLLUP_MEASUREMENT = "rollup_1m"
RAW_VITALS = ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2")
_AGGREGATES = (("min", "_min"), ("max", "_max"), ("sum", "_sum"), ("count", "_n"))


def flux_time(t: float) -> str:
    """An epoch time as a Flux time literal (RFC 3339, UTC, nanoseconds)."""
    whole = int(t // 1)
    nanos = int(round((t - whole) * 1e9))
    return datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def flux_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _window(source: str, fn: str, suffix: str) -> str:
    return (f"{source}\n  |> aggregateWindow(every: 1m, fn: {fn}, timeSrc: \"_start\", createEmpty: false)\n"
            f"  |> map(fn: (r) => ({{r with _measurement: \"{ROLLUP_MEASUREMENT}\", _field: r._field + \"{suffix}\"}}))")


def rollup_flux(bucket: str, org: str, start: str, stop: str, rollup_bucket: str | None = None) -> str:
    """Flux that recomputes every minute in [start, stop) (Flux time expressions) and writes it to
    `rollup_bucket` (VIGIL_INFLUX_ROLLUP_BUCKET: kept longer than the raw points; default `bucket`)."""
    b, field_test = flux_string(bucket), " or ".join(f'r._field == "{name}"' for name in RAW_VITALS)
    raw = (f"from(bucket: {b})\n  |> range(start: {start}, stop: {stop})\n"
           f"  |> filter(fn: (r) => r._measurement == \"vitals\" and ({field_test}))")
    scores = (f"from(bucket: {b})\n  |> range(start: {start}, stop: {stop})\n"
              "  |> filter(fn: (r) => r._measurement == \"scores\" and r._field == \"risk\")\n"
              "  |> drop(columns: [\"model_version\"])\n  |> group(columns: [\"_measurement\", \"_field\", \"patient_id\"])")
    partial = (f"from(bucket: {b})\n  |> range(start: {start}, stop: {stop})\n"
               "  |> filter(fn: (r) => r._measurement == \"vitals\" and r._field == \"news2_partial\" and r._value == true)")
    counted = (f"from(bucket: {b})\n  |> range(start: {start}, stop: {stop})\n"
               "  |> filter(fn: (r) => r._measurement == \"vitals\" and (r._field == \"seq\" or r._field == \"flags\"))")
    streams = [_window(raw, fn, suffix) for fn, suffix in _AGGREGATES]
    streams += [_window(scores, fn, suffix) for fn, suffix in _AGGREGATES]
    streams.append(_window(partial, "count", "_n"))  # news2_partial_n
    streams.append(_window(counted, "count", "_n").replace('r._field + "_n"',
                                                           'if r._field == "seq" then "readings_n" else "flagged_n"'))
    names = [f"s{i}" for i in range(len(streams))]
    body = "\n".join(f"{name} = {stream}" for name, stream in zip(names, streams))
    target = flux_string(rollup_bucket or bucket)
    return f"{body}\nunion(tables: [{', '.join(names)}])\n  |> to(bucket: {target}, org: {flux_string(org)})\n"


def task_name(bucket: str) -> str:
    return f"vigil-rollup-1m-{bucket}"


def task_flux(bucket: str, org: str, lookback_s: int = 900, rollup_bucket: str | None = None) -> str:
    """The task: every minute, the last `lookback_s` recomputed (now() is the scheduled minute)."""
    head = f'option task = {{name: {flux_string(task_name(bucket))}, every: 1m, offset: 10s}}\n\n'
    return head + rollup_flux(bucket, org, f"-{int(lookback_s)}s", "now()", rollup_bucket)


class InfluxRollups:
    """Installs the task, and recomputes any range on demand (after a backlog, or to build a bench)."""

    def __init__(self, client: object, org: str, bucket: str, rollup_bucket: str | None = None) -> None:
        self.client, self.org, self.bucket = client, org, bucket
        self.rollup_bucket = rollup_bucket or bucket  # influx_buckets.py: rollups kept longer than raw points

    def rebuild(self, start: float, stop: float, chunk_s: float = 86_400.0) -> int:
        """Recompute the minutes in [start, stop), a day at a time; returns the chunks run."""
        query_api = self.client.query_api()  # type: ignore[attr-defined]
        low = (start // 60) * 60
        chunks = 0
        while low < stop:
            high = min(low + chunk_s, -(-stop // 60) * 60)
            query_api.query(rollup_flux(self.bucket, self.org, flux_time(low), flux_time(high), self.rollup_bucket),
                            org=self.org)
            low, chunks = high, chunks + 1
        return chunks

    def install_task(self, lookback_s: int = 900) -> str:
        """Create the task, or update its Flux when it differs; returns its id."""
        from influxdb_client import TaskCreateRequest, TaskUpdateRequest

        tasks = self.client.tasks_api()  # type: ignore[attr-defined]
        flux = task_flux(self.bucket, self.org, lookback_s, self.rollup_bucket)
        existing = [task for task in tasks.find_tasks(name=task_name(self.bucket)) if task.name == task_name(self.bucket)]
        if existing:
            task = existing[0]
            if task.flux != flux or task.status != "active":
                tasks.update_task_request(task.id, TaskUpdateRequest(flux=flux, status="active"))
            return str(task.id)
        org_id = self.client.organizations_api().find_organizations(org=self.org)[0].id  # type: ignore[attr-defined]
        created = tasks.create_task(task_create_request=TaskCreateRequest(flux=flux, org_id=org_id, status="active"))
        return str(created.id)
