"""The physicians' Grafana dashboards, as code.

Two dashboards on the InfluxDB series the scaled path writes (`vitals` and `scores`
measurements, `patient_id` tag; services/vigil/shell/stores/influx.py):

- **Vigil · Ward**: every patient at a glance: latest NEWS2, SpO2, heart rate and model risk,
  and whether their device is still sending (readings in the last 15 minutes).
- **Vigil · Patient**: one patient (a dashboard variable) over time: heart rate, SpO2,
  respiratory rate, temperature, blood pressure, NEWS2, the model's risk and anomaly score, and
  battery, with the NEWS2 and SpO2 thresholds drawn in.

`vigil dashboards export` writes them to deploy/grafana/dashboards/ (file provisioning);
`vigil dashboards publish` pushes them through Grafana's HTTP API. Queries are Flux, with
Grafana's macros (`v.timeRangeStart`, `v.timeRangeStop`, `v.windowPeriod`) and the dashboard
variables `${bucket}` and `${patient}`; tests/integration runs every one against InfluxDB.
"""

from __future__ import annotations

from typing import Any

DATASOURCE_UID = "vigil-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
FOLDER_UID = "vigil"
FOLDER_TITLE = "Vigil"


def _vital_query(field: str, measurement: str = "vitals") -> str:
    return (
        'from(bucket: "${bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r.patient_id == "${{patient}}" '
        f'and r._field == "{field}")\n'
        "  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n"
        f'  |> keep(columns: ["_time", "_value"])\n  |> yield(name: "{field}")'
    )


def _latest_query(field: str, measurement: str = "vitals", start: str = "-6h") -> str:
    return (
        'from(bucket: "${bucket}")\n'
        f"  |> range(start: {start})\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")\n'
        '  |> group(columns: ["patient_id"])\n  |> last()\n'
        f'  |> keep(columns: ["patient_id", "_value"])\n  |> rename(columns: {{_value: "{field}"}})\n  |> group()'
    )


def _thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": value, "color": color} for value, color in steps]}


def _timeseries(panel_id: int, title: str, unit: str, x: int, y: int, queries: list[tuple[str, str]],
                thresholds: dict[str, Any] | None = None, w: int = 12, h: int = 8) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"spanNulls": True}}
    if thresholds:
        defaults["thresholds"] = thresholds
        defaults["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    return {
        "id": panel_id, "type": "timeseries", "title": title, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": ref, "datasource": DATASOURCE, "query": query} for ref, query in queries],
    }


def _bucket_variable() -> dict[str, Any]:
    return {"name": "bucket", "type": "constant", "query": "vitals", "hide": 2,
            "current": {"text": "vitals", "value": "vitals"}}


def patient_dashboard() -> dict[str, Any]:
    news2_steps = _thresholds((None, "green"), (5, "orange"), (7, "red"))
    spo2_steps = _thresholds((None, "red"), (92, "orange"), (96, "green"))
    panels = [
        _timeseries(1, "Heart rate", "bpm", 0, 0, [("A", _vital_query("hr"))]),
        _timeseries(2, "SpO2", "percent", 12, 0, [("A", _vital_query("spo2"))], spo2_steps),
        _timeseries(3, "Respiratory rate", "/min", 0, 8, [("A", _vital_query("rr"))]),
        _timeseries(4, "Temperature", "celsius", 12, 8, [("A", _vital_query("temp"))]),
        _timeseries(5, "Blood pressure", "mmHg", 0, 16, [("A", _vital_query("sbp")), ("B", _vital_query("dbp"))]),
        _timeseries(6, "NEWS2", "none", 12, 16, [("A", _vital_query("news2"))], news2_steps),
        _timeseries(7, "Deterioration risk (model)", "percentunit", 0, 24,
                    [("A", _vital_query("risk", "scores"))], _thresholds((None, "green"), (0.5, "orange"))),
        _timeseries(8, "Anomaly score (model)", "none", 12, 24, [("A", _vital_query("anomaly", "scores"))]),
        _timeseries(9, "Device battery", "percent", 0, 32, [("A", _vital_query("battery"))],
                    _thresholds((None, "red"), (15, "green")), w=24, h=6),
    ]
    return {
        "uid": "vigil-patient", "title": "Vigil · Patient", "tags": ["vigil"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-12h", "to": "now"},
        "description": "One patient's vital signs, NEWS2 and model scores. Vigil supports clinicians; it does not replace them.",
        "templating": {"list": [
            _bucket_variable(),
            {"name": "patient", "type": "query", "label": "Patient", "datasource": DATASOURCE, "refresh": 2,
             "query": 'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "${bucket}", tag: "patient_id")',
             "definition": "patient_id tag values"},
        ]},
        "panels": panels,
    }


WARD_TABLE_FIELDS = (("news2", "vitals", "NEWS2"), ("spo2", "vitals", "SpO2 %"), ("hr", "vitals", "HR bpm"),
                     ("risk", "scores", "Risk"))


def ward_query() -> str:
    """One row per patient: the latest NEWS2, SpO2, HR and model risk, joined by patient."""
    parts = [f'{field} = {_latest_query(field, measurement)}' for field, measurement, _ in WARD_TABLE_FIELDS]
    join = "union(tables: [" + ", ".join(field for field, _, _ in WARD_TABLE_FIELDS) + "])\n" \
        '  |> group(columns: ["patient_id"])\n  |> reduce(identity: {news2: -1.0, spo2: -1.0, hr: -1.0, risk: -1.0}, ' \
        "fn: (r, accumulator) => ({news2: if exists r.news2 then float(v: r.news2) else accumulator.news2, " \
        "spo2: if exists r.spo2 then r.spo2 else accumulator.spo2, hr: if exists r.hr then r.hr else accumulator.hr, " \
        "risk: if exists r.risk then r.risk else accumulator.risk}))\n  |> group()\n" \
        '  |> sort(columns: ["news2"], desc: true)'
    return "\n".join(parts) + "\n" + join


def silent_devices_query() -> str:
    """Every patient heard from in the last 6 h: readings in the last 15 minutes (0: the device
    went quiet) and when it was last heard from, quietest first."""
    return (
        'import "date"\n'
        "cutoff = date.sub(d: 15m, from: now())\n"
        'from(bucket: "${bucket}")\n  |> range(start: -6h)\n'
        '  |> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq")\n'
        '  |> group(columns: ["patient_id"])\n'
        "  |> reduce(identity: {readings_15m: 0, last_seen: time(v: 0)}, fn: (r, accumulator) => ({\n"
        "      readings_15m: accumulator.readings_15m + (if r._time >= cutoff then 1 else 0),\n"
        "      last_seen: if r._time > accumulator.last_seen then r._time else accumulator.last_seen}))\n"
        '  |> group()\n  |> sort(columns: ["readings_15m", "last_seen"])'
    )


def ward_dashboard() -> dict[str, Any]:
    table_overrides = [{"matcher": {"id": "byName", "options": field},
                        "properties": [{"id": "displayName", "value": label}]}
                       for field, _, label in WARD_TABLE_FIELDS]
    table_overrides.append({"matcher": {"id": "byName", "options": "news2"}, "properties": [
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        {"id": "thresholds", "value": _thresholds((None, "green"), (5, "orange"), (7, "red"))}]})
    return {
        "uid": "vigil-ward", "title": "Vigil · Ward", "tags": ["vigil"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "description": "Every patient at a glance, sickest first. Vigil supports clinicians; it does not replace them.",
        "templating": {"list": [_bucket_variable()]},
        "panels": [
            {"id": 1, "type": "table", "title": "Patients, sickest first (latest values)", "datasource": DATASOURCE,
             "gridPos": {"x": 0, "y": 0, "w": 16, "h": 14},
             "fieldConfig": {"defaults": {}, "overrides": table_overrides},
             "links": [{"title": "Open patient", "url": "/d/vigil-patient?var-patient=${__data.fields.patient_id}"}],
             "targets": [{"refId": "A", "datasource": DATASOURCE, "query": ward_query()}]},
            {"id": 2, "type": "table", "title": "Devices: readings in the last 15 min (0: silent)", "datasource": DATASOURCE,
             "gridPos": {"x": 16, "y": 0, "w": 8, "h": 14},
             "fieldConfig": {"defaults": {"thresholds": _thresholds((None, "red"), (1, "green"))}, "overrides": []},
             "targets": [{"refId": "A", "datasource": DATASOURCE, "query": silent_devices_query()}]},
        ],
    }


def all_dashboards() -> list[dict[str, Any]]:
    return [ward_dashboard(), patient_dashboard()]


def datasource(influx_url: str, org: str, bucket: str, token: str) -> dict[str, Any]:
    """The InfluxDB (Flux) data source the dashboards use."""
    return {
        "uid": DATASOURCE_UID, "name": "Vigil InfluxDB", "type": "influxdb", "access": "proxy", "url": influx_url,
        "isDefault": False, "jsonData": {"version": "Flux", "organization": org, "defaultBucket": bucket},
        "secureJsonData": {"token": token},
    }


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, Flux query) for every target, and every query variable, of a dashboard."""
    out = [(panel["title"], target["query"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    out += [(f"variable {v['name']}", v["query"]) for v in dashboard.get("templating", {}).get("list", [])
            if v.get("type") == "query"]
    return out
