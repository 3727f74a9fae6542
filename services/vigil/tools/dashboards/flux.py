"""The dashboards' Flux queries on the series the scaled path writes (`vitals`, `scores`).

Why these shapes:

- **Trends are min–max bands, not means.** A one-minute SpO2 dip to 84 % inside a 10-minute
  window averages to ~95 % and vanishes; the window's minimum keeps it. Every trend yields the
  window's min, max and mean as three series named `<label> min|max|mean`; the panel fills
  between min and max. Each series reads the raw points through its own `from()` so that
  InfluxDB can push the windowed aggregate down to storage; the windows of every device the
  patient wore are then merged into one series in time order.
- **Latest values whatever their age.** The ward tables look back `LATEST_LOOKBACK` (30 days,
  longer than any stay on the virtual ward without a reading) with `last()`, which InfluxDB
  answers from the newest point of each series instead of scanning the range; a device silent
  for hours stays on the ward table, with how long ago each value was measured (`*_age_s`).
- **Partial NEWS2 is marked.** A NEWS2 scored with parameters missing (`news2_partial`) may
  understate the patient's state: the trend draws those scores as a separate series and the
  ward table has a column that says so.

Grafana substitutes `v.timeRangeStart`, `v.timeRangeStop`, `v.windowPeriod`, `${bucket}` and
`${patient}`; tests/integration/test_dashboard_queries.py runs every query on the real InfluxDB.
"""

from __future__ import annotations

LATEST_LOOKBACK = "-30d"
SILENT_AFTER = "15m"  # no reading for this long: the device is silent (the devices table's 0)

# (field, measurement, ward-table label); news2_partial is 1.0 when the latest NEWS2 was partial.
WARD_TABLE_FIELDS = (("news2", "vitals", "NEWS2"), ("news2_partial", "vitals", "NEWS2 partial"),
                     ("spo2", "vitals", "SpO2 %"), ("hr", "vitals", "HR bpm"), ("risk", "scores", "Risk"))


def _points(field: str, measurement: str) -> str:
    return (
        'from(bucket: "${bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r.patient_id == "${{patient}}" '
        f'and r._field == "{field}")\n'
    )


def band_query(field: str, label: str, measurement: str = "vitals") -> str:
    """Per window: the lowest, highest and mean value, as `<label> min`, `<label> max`, `<label> mean`."""
    parts = []
    for fn in ("min", "max", "mean"):
        parts.append(
            _points(field, measurement)
            + f"  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)\n"
            + '  |> group()\n  |> keep(columns: ["_time", "_value"])\n  |> sort(columns: ["_time"])\n'
            + f'  |> rename(columns: {{_value: "{label} {fn}"}})\n  |> yield(name: "{field}_{fn}")'
        )
    return "\n".join(parts)


def line_query(field: str, label: str, measurement: str = "scores", fn: str = "max") -> str:
    """Per window: the highest value (model scores: a brief peak matters more than the mean), or
    the lowest (`fn="min"`: a battery)."""
    return (
        _points(field, measurement)
        + f"  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)\n"
        + '  |> group()\n  |> keep(columns: ["_time", "_value"])\n  |> sort(columns: ["_time"])\n'
        + f'  |> rename(columns: {{_value: "{label}"}})\n  |> yield(name: "{field}")'
    )


def partial_news2_query(label: str = "NEWS2 partial") -> str:
    """The NEWS2 scores that were partial (parameters missing), highest per window, as their own series."""
    return (
        'from(bucket: "${bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        '  |> filter(fn: (r) => r._measurement == "vitals" and r.patient_id == "${patient}" '
        'and (r._field == "news2" or r._field == "news2_partial"))\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "  |> filter(fn: (r) => exists r.news2 and exists r.news2_partial and r.news2_partial)\n"
        "  |> map(fn: (r) => ({r with _value: float(v: r.news2)}))\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)\n"
        '  |> group()\n  |> keep(columns: ["_time", "_value"])\n  |> sort(columns: ["_time"])\n'
        f'  |> rename(columns: {{_value: "{label}"}})\n  |> yield(name: "news2_partial")'
    )


_LATEST = (
    "latest = (measurement, field) => from(bucket: \"${bucket}\")\n"
    f"  |> range(start: {LATEST_LOOKBACK})\n"
    "  |> filter(fn: (r) => r._measurement == measurement and r._field == field)\n"
    "  |> last()\n"
    '  |> group(columns: ["patient_id"])\n'
    '  |> sort(columns: ["_time"])\n'
    "  |> last()\n"
    "  |> map(fn: (r) => ({patient_id: r.patient_id, _time: r._time, _field: field, _value: float(v: r._value)}))\n"
    '  |> group()\n'
)


def ward_query() -> str:
    """One row per patient ever heard from in LATEST_LOOKBACK: the latest NEWS2 (and whether it
    was partial), SpO2, HR and model risk, each with its age in seconds, sickest first."""
    values = ", ".join(f'latest(measurement: "{measurement}", field: "{field}")'
                       for field, measurement, _ in WARD_TABLE_FIELDS)
    return (
        _LATEST
        + f"values = union(tables: [{values}])\n"
        + "ages = values\n"
        + '  |> map(fn: (r) => ({patient_id: r.patient_id, _time: r._time, _field: r._field + "_age_s", '
        + "_value: float(v: int(v: now()) - int(v: r._time)) / 1000000000.0}))\n"
        + "union(tables: [values, ages])\n"
        + '  |> drop(columns: ["_time"])\n'
        + '  |> pivot(rowKey: ["patient_id"], columnKey: ["_field"], valueColumn: "_value")\n'
        + '  |> sort(columns: ["news2"], desc: true)'
    )


def silent_devices_query() -> str:
    """Every patient heard from in LATEST_LOOKBACK: readings in the last SILENT_AFTER (0: the
    device went quiet), when it was last heard from and how long ago (`silent_for_s`), quietest first."""
    return (
        'seen = from(bucket: "${bucket}")\n'
        f"  |> range(start: {LATEST_LOOKBACK})\n"
        '  |> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq")\n'
        "  |> last()\n"
        '  |> group(columns: ["patient_id"])\n'
        '  |> sort(columns: ["_time"])\n'
        "  |> last()\n"
        "  |> map(fn: (r) => ({patient_id: r.patient_id, last_seen: r._time, readings_15m: 0}))\n"
        'recent = from(bucket: "${bucket}")\n'
        f"  |> range(start: -{SILENT_AFTER})\n"
        '  |> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq")\n'
        "  |> count()\n"
        '  |> group(columns: ["patient_id"])\n'
        "  |> sum()\n"
        "  |> map(fn: (r) => ({patient_id: r.patient_id, last_seen: time(v: 0), readings_15m: r._value}))\n"
        "union(tables: [seen, recent])\n"
        '  |> group(columns: ["patient_id"])\n'
        "  |> reduce(identity: {readings_15m: 0, last_seen: time(v: 0)}, fn: (r, accumulator) => ({\n"
        "      readings_15m: accumulator.readings_15m + r.readings_15m,\n"
        "      last_seen: if r.last_seen > accumulator.last_seen then r.last_seen else accumulator.last_seen}))\n"
        "  |> group()\n"
        "  |> map(fn: (r) => ({r with silent_for_s: float(v: int(v: now()) - int(v: r.last_seen)) / 1000000000.0}))\n"
        '  |> sort(columns: ["readings_15m", "last_seen"])'
    )
