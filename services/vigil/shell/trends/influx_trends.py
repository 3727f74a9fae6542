"""Trends from InfluxDB: the scaled path's `TrendStore`, over `rollup_1m` (see influx_rollup.py).

Each query lets the server do the merging (a patient's devices, then minutes into `step`), and
answers a few columns as plain CSV, which the standard library reads several times faster than
the client's record objects. `latest` reads the raw points' last values (the storage engine finds
them itself), so a value is as fresh as the point; rollups lag by up to a minute.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence

from vigil.shell.trends.influx_rollup import ROLLUP_MEASUREMENT, RAW_VITALS, flux_string, flux_time
from vigil.shell.trends.model import (
    SPARKLINE_SPAN_S,
    SPARKLINE_STEP_S,
    SPARKLINE_VITALS,
    Bucket,
    Latest,
    PatientLatest,
    WardRow,
    check_vital,
    sparkline_vitals,
    window,
)

_PARTS = (("_min", "min"), ("_max", "max"), ("_sum", "sum"), ("_n", "sum"))
LATEST_LOOKBACK_S = 30 * 86_400  # a device silent this long still shows its last values


def _rfc3339_to_epoch(value: str) -> float:
    from datetime import datetime

    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    head, _, zone = value.partition("+")
    if "." in head:  # Python's fromisoformat takes at most microseconds
        whole, fraction = head.split(".")
        return datetime.fromisoformat(f"{whole}+{zone}").timestamp() + float("0." + fraction)
    return datetime.fromisoformat(value).timestamp()


def _patients_regex(patient_ids: list[str]) -> str:
    """A Flux regex literal matching exactly these tag values (the storage engine filters on it)."""
    escaped = ("".join(ch if ch.isalnum() else "\\" + ch for ch in patient_id) for patient_id in patient_ids)
    return "/^(" + "|".join(escaped) + ")$/"


class InfluxTrends:
    """`TrendStore` over an InfluxDB bucket holding `vitals`, `scores` and `rollup_1m`."""

    def __init__(self, client: object, org: str, bucket: str, rollup_bucket: str | None = None) -> None:
        self.client, self.org, self.bucket = client, org, bucket
        self.rollup_bucket = rollup_bucket or bucket  # `rollup_1m`'s bucket (VIGIL_INFLUX_ROLLUP_BUCKET, influx_buckets.py)
        self._query_api = client.query_api()  # type: ignore[attr-defined]

    def _rows(self, flux: str, columns: tuple[str, ...]) -> Iterator[list[str]]:
        """The answer's `columns` per row, from annotation-free CSV (a header before each table)."""
        from influxdb_client import Dialect

        response = self._query_api.query_raw(flux, org=self.org, dialect=Dialect(header=True, annotations=[]))
        text = response.data.decode() if hasattr(response, "data") else response.read().decode()
        at: list[int] | None = None
        for record in csv.reader(io.StringIO(text)):
            if not record or not any(record):
                at = None
            elif at is None:
                at = [record.index(name) for name in columns]
            else:
                yield [record[i] for i in at]

    def _windowed(self, where: str, low: float, high: float, step: int, fields: list[str]) -> str:
        """Each field aggregated per `step` by its own function (min, max, or sum), one branch per
        function, each in the pattern the storage engine computes itself (range, filter on tags
        and fields, aggregateWindow: pushdown), per series; readers merge devices."""
        by_fn: dict[str, list[str]] = defaultdict(list)
        for name in fields:
            by_fn[_merge_fn(name)].append(name)
        branches = []
        for fn, names in by_fn.items():
            test = " or ".join(f'r._field == "{name}"' for name in names)
            branches.append(f"from(bucket: {flux_string(self.rollup_bucket)})\n  |> range(start: {flux_time(low)}, stop: {flux_time(high)})\n"
                            f"  |> filter(fn: (r) => {where} and ({test}))\n"
                            f"  |> aggregateWindow(every: {step}s, fn: {fn}, timeSrc: \"_start\", createEmpty: false)")
        names = [f"s{i}" for i in range(len(branches))]
        body = "\n".join(f"{name} = {branch}" for name, branch in zip(names, branches))
        return f"{body}\nunion(tables: [{', '.join(names)}])\n  |> keep(columns: [\"patient_id\", \"_time\", \"_field\", \"_value\"])"

    def series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        check_vital(vital)
        low, high = window(start, end, step)
        fields = [f"{vital}{suffix}" for suffix, _ in _PARTS] + (["news2_partial_n"] if vital == "news2" else [])
        where = f"r._measurement == \"{ROLLUP_MEASUREMENT}\" and r.patient_id == {flux_string(patient_id)}"
        buckets: dict[float, dict[str, float]] = defaultdict(dict)
        for _, t, name, value in self._rows(self._windowed(where, low, high, step, fields), _COLUMNS):
            _merge(buckets[_rfc3339_to_epoch(t)], "_partial_n" if name == "news2_partial_n" else name[len(vital):], value)
        return [_bucket(t, parts, vital) for t, parts in sorted(buckets.items()) if parts.get("_n")]

    def latest(self, patient_ids: list[str]) -> dict[str, PatientLatest]:
        found: dict[str, dict[str, Latest]] = {patient_id: {} for patient_id in patient_ids}
        if not patient_ids:
            return {}
        fields = " or ".join(f'r._field == "{name}"' for name in (*RAW_VITALS, "news2_partial"))
        who = _patients_regex(patient_ids)
        flux = (f"vitals = from(bucket: {flux_string(self.bucket)})\n  |> range(start: -{LATEST_LOOKBACK_S}s)\n"
                f"  |> filter(fn: (r) => r._measurement == \"vitals\" and r.patient_id =~ {who} and ({fields}))\n"
                "  |> last()\n"
                f"risk = from(bucket: {flux_string(self.bucket)})\n  |> range(start: -{LATEST_LOOKBACK_S}s)\n"
                f"  |> filter(fn: (r) => r._measurement == \"scores\" and r.patient_id =~ {who} and r._field == \"risk\")\n"
                "  |> last()\n"
                "union(tables: [vitals, risk])\n  |> keep(columns: [\"patient_id\", \"_time\", \"_field\", \"_value\"])")
        partial: dict[tuple[str, float], bool] = {}
        for patient_id, when, name, text in self._rows(flux, _COLUMNS):
            t = _rfc3339_to_epoch(when)
            if patient_id not in found:
                continue
            if name == "news2_partial":
                partial[(patient_id, t)] = text == "true"
                continue
            value = float(text)
            seen = found[patient_id].get(name)
            if seen is None or t > seen.t:  # several devices: the newest
                found[patient_id][name] = Latest(value, t)
        for patient_id, vitals in found.items():
            news2 = vitals.get("news2")
            if news2 is not None:
                vitals["news2"] = Latest(news2.value, news2.t, partial.get((patient_id, news2.t)))
        return {patient_id: PatientLatest(patient_id, vitals) for patient_id, vitals in found.items()}

    def ward(self, patient_ids: list[str], now: float, vitals: Sequence[str] = SPARKLINE_VITALS) -> list[WardRow]:
        asked = sparkline_vitals(vitals)
        latest = self.latest(patient_ids)
        low, high = window(now - SPARKLINE_SPAN_S, now, SPARKLINE_STEP_S)
        fields = [f"{vital}{suffix}" for vital in asked for suffix, _ in _PARTS] + (
            ["news2_partial_n"] if "news2" in asked else [])
        where = f"r._measurement == \"{ROLLUP_MEASUREMENT}\" and r.patient_id =~ {_patients_regex(patient_ids)}"
        parts: dict[tuple[str, str, float], dict[str, float]] = defaultdict(dict)
        times: dict[str, float] = {}
        for patient_id, t, name, value in self._rows(self._windowed(where, low, high, SPARKLINE_STEP_S, fields), _COLUMNS):
            vital, _, suffix = ("news2", "", "partial_n") if name == "news2_partial_n" else name.rpartition("_")
            epoch = times.get(t)
            if epoch is None:
                epoch = times[t] = _rfc3339_to_epoch(t)
            _merge(parts[(patient_id, vital, epoch)], "_" + suffix, value)
        lines: dict[str, dict[str, list[Bucket]]] = {p: {v: [] for v in asked} for p in patient_ids}
        for (patient_id, vital, t), values in sorted(parts.items()):
            if patient_id in lines and values.get("_n"):
                lines[patient_id][vital].append(_bucket(t, values, vital))
        return [WardRow(patient_id, latest[patient_id], lines[patient_id]) for patient_id in patient_ids]

    def raw_series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        """The same buckets, computed from every raw point: the baseline rollups replace. Each
        aggregate per device series, so the storage engine computes it (the fastest a raw scan
        gets); devices are merged here."""
        check_vital(vital)
        low, high = window(start, end, step)
        measurement, name = ("scores", "risk") if vital == "risk" else ("vitals", vital)
        source = (f"from(bucket: {flux_string(self.bucket)})\n"
                  f"  |> range(start: {flux_time(low)}, stop: {flux_time(high)})\n"
                  f"  |> filter(fn: (r) => r._measurement == \"{measurement}\" and r.patient_id == {flux_string(patient_id)}"
                  " and r._field == \"{field}\"{test})")
        plain = source.replace("{test}", "").replace("{field}", name)
        streams = {suffix: (plain, fn) for suffix, fn in (("_min", "min"), ("_max", "max"), ("_sum", "sum"), ("_n", "count"))}
        if vital == "news2":
            partial = source.replace("{test}", " and r._value == true").replace("{field}", "news2_partial")
            streams["_partial_n"] = (partial, "count")
        merge = {"_min": min, "_max": max}
        buckets: dict[float, dict[str, float]] = defaultdict(dict)
        for suffix, (stream, fn) in streams.items():
            flux = (f"{stream}\n  |> aggregateWindow(every: {step}s, fn: {fn}, timeSrc: \"_start\", createEmpty: false)"
                    "\n  |> keep(columns: [\"_time\", \"_value\", \"device_id\", \"model_version\"])")
            for when, text in self._rows(flux, ("_time", "_value")):
                parts, value = buckets[_rfc3339_to_epoch(when)], float(text)
                seen = parts.get(suffix)
                parts[suffix] = value if seen is None else merge.get(suffix, lambda a, b: a + b)(seen, value)
        return [_bucket(t, parts, vital) for t, parts in sorted(buckets.items()) if parts.get("_n")]


_COLUMNS = ("patient_id", "_time", "_field", "_value")


def _merge_fn(name: str) -> str:
    return "min" if name.endswith("_min") else "max" if name.endswith("_max") else "sum"


def _merge(parts: dict[str, float], suffix: str, value: str) -> None:
    """Another device's share of the same bucket: min of mins, max of maxes, sums and counts added."""
    number, seen = float(value), parts.get(suffix)
    if seen is None:
        parts[suffix] = number
    elif suffix == "_min":
        parts[suffix] = min(seen, number)
    elif suffix == "_max":
        parts[suffix] = max(seen, number)
    else:
        parts[suffix] = seen + number


def _bucket(t: float, parts: dict[str, float], vital: str) -> Bucket:
    count = int(parts["_n"])
    partial = bool(parts.get("_partial_n")) if vital == "news2" else None
    return Bucket(t, parts["_min"], parts["_max"], parts["_sum"] / count, count, partial)
