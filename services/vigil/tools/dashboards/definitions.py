"""The physicians' Grafana dashboards, as code.

Two dashboards on the InfluxDB series the scaled path writes (`vitals` and `scores`
measurements, `patient_id` tag; services/vigil/shell/stores/influx.py), with the queries in
flux.py and the alert annotations (PostgreSQL) in annotations.py:

- **Vigil · Ward**: every patient at a glance: latest NEWS2 (partial or not), SpO2, heart rate
  and model risk, each with its age, however old; and every device, quietest first.
- **Vigil · Patient**: one patient (a dashboard variable) over time: heart rate, SpO2,
  respiratory rate, temperature, blood pressure and NEWS2 as min–max bands (a dip inside an
  interval stays visible), partial NEWS2 marked, the model's risk and anomaly score, battery,
  the NEWS2 and SpO2 thresholds, and alerts and the ward's responses as annotations.

`vigil dashboards export` writes them to deploy/grafana/dashboards/ (file provisioning);
`vigil dashboards publish` pushes them through Grafana's HTTP API. Queries are Flux, with
Grafana's macros (`v.timeRangeStart`, `v.timeRangeStop`, `v.windowPeriod`) and the dashboard
variables `${bucket}` and `${patient}`; tests/integration runs every one against InfluxDB.
"""

from __future__ import annotations

from typing import Any

from vigil.tools.dashboards.annotations import patient_annotations
from vigil.tools.dashboards.flux import (
    WARD_TABLE_FIELDS,
    band_query,
    line_query,
    partial_news2_query,
    silent_devices_query,
    ward_query,
)

DATASOURCE_UID = "vigil-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
FOLDER_UID = "vigil"
FOLDER_TITLE = "Vigil"


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


def _band_overrides(label: str, colour: str) -> list[dict[str, Any]]:
    """min and max drawn as thin edges with the area between them filled; the mean as the line."""
    fixed = {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}
    return [
        {"matcher": {"id": "byName", "options": f"{label} max"}, "properties": [
            fixed, {"id": "custom.fillBelowTo", "value": f"{label} min"}, {"id": "custom.fillOpacity", "value": 25},
            {"id": "custom.lineWidth", "value": 0}]},
        {"matcher": {"id": "byName", "options": f"{label} min"}, "properties": [
            fixed, {"id": "custom.lineWidth", "value": 0}]},
        {"matcher": {"id": "byName", "options": f"{label} mean"}, "properties": [
            fixed, {"id": "custom.lineWidth", "value": 2}]},
    ]


def _band_panel(panel_id: int, title: str, unit: str, x: int, y: int, bands: list[tuple[str, str, str]],
                thresholds: dict[str, Any] | None = None, w: int = 12, h: int = 8) -> dict[str, Any]:
    """A trend of one or more vitals as min–max bands: (field, label, colour) each."""
    refs = "ABCDEFGH"
    panel = _timeseries(panel_id, title, unit, x, y,
                        [(refs[i], band_query(field, label)) for i, (field, label, _) in enumerate(bands)],
                        thresholds, w, h)
    panel["description"] = ("Shaded: the lowest to the highest reading in each interval, so a brief dip "
                            "or spike stays visible at any zoom; line: the interval's mean.")
    panel["fieldConfig"]["overrides"] = [o for field, label, colour in bands for o in _band_overrides(label, colour)]
    return panel


def patient_dashboard() -> dict[str, Any]:
    news2_steps = _thresholds((None, "green"), (5, "orange"), (7, "red"))
    spo2_steps = _thresholds((None, "red"), (92, "orange"), (96, "green"))
    news2 = _band_panel(6, "NEWS2", "none", 12, 16, [("news2", "NEWS2", "dark-red")], news2_steps)
    news2["targets"].append({"refId": "B", "datasource": DATASOURCE, "query": partial_news2_query()})
    news2["fieldConfig"]["overrides"].append({"matcher": {"id": "byName", "options": "NEWS2 partial"}, "properties": [
        {"id": "custom.drawStyle", "value": "points"}, {"id": "custom.pointSize", "value": 9},
        {"id": "color", "value": {"mode": "fixed", "fixedColor": "purple"}}]})
    news2["description"] = ("Shaded: the lowest to the highest NEWS2 in each interval; line: the mean. Purple "
                            "points: partial scores (some parameters missing), which may understate the patient.")
    panels = [
        _band_panel(1, "Heart rate", "bpm", 0, 0, [("hr", "HR", "red")]),
        _band_panel(2, "SpO2", "percent", 12, 0, [("spo2", "SpO2", "blue")], spo2_steps),
        _band_panel(3, "Respiratory rate", "/min", 0, 8, [("rr", "RR", "green")]),
        _band_panel(4, "Temperature", "celsius", 12, 8, [("temp", "Temp", "orange")]),
        _band_panel(5, "Blood pressure", "mmHg", 0, 16, [("sbp", "Systolic", "purple"), ("dbp", "Diastolic", "blue")]),
        news2,
        _timeseries(7, "Deterioration risk (model), highest per interval", "percentunit", 0, 24,
                    [("A", line_query("risk", "Risk"))], _thresholds((None, "green"), (0.5, "orange"))),
        _timeseries(8, "Anomaly score (model), highest per interval", "none", 12, 24,
                    [("A", line_query("anomaly", "Anomaly"))]),
        _timeseries(9, "Device battery (lowest per interval)", "percent", 0, 32,
                    [("A", line_query("battery", "Battery", "vitals", fn="min"))],
                    _thresholds((None, "red"), (15, "green")), w=24, h=6),
    ]
    return {
        "uid": "vigil-patient", "title": "Vigil · Patient", "tags": ["vigil"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-12h", "to": "now"},
        "description": "One patient's vital signs, NEWS2 and model scores. Vigil supports clinicians; it does not replace them.",
        "annotations": patient_annotations(),
        "templating": {"list": [
            _bucket_variable(),
            {"name": "patient", "type": "query", "label": "Patient", "datasource": DATASOURCE, "refresh": 2,
             "query": 'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "${bucket}", tag: "patient_id")',
             "definition": "patient_id tag values"},
        ]},
        "panels": panels,
    }


_AGE_STEPS = ((None, "green"), (5 * 60, "orange"), (15 * 60, "red"))  # a reading a minute is expected


def _ward_table_overrides() -> list[dict[str, Any]]:
    overrides: list[dict[str, Any]] = []
    for field, _, label in WARD_TABLE_FIELDS:
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "displayName", "value": label}]})
        overrides.append({"matcher": {"id": "byName", "options": f"{field}_age_s"}, "properties": [
            {"id": "displayName", "value": f"{label} age"}, {"id": "unit", "value": "dtdurations"},
            {"id": "thresholds", "value": _thresholds(*_AGE_STEPS)},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}}]})
    overrides.append({"matcher": {"id": "byName", "options": "news2"}, "properties": [
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        {"id": "thresholds", "value": _thresholds((None, "green"), (5, "orange"), (7, "red"))}]})
    overrides.append({"matcher": {"id": "byName", "options": "news2_partial"}, "properties": [
        {"id": "mappings", "value": [{"type": "value", "options": {
            "1": {"index": 0, "text": "partial", "color": "purple"}, "0": {"index": 1, "text": "complete"}}}]},
        {"id": "custom.cellOptions", "value": {"type": "color-text"}}]})
    return overrides


def _column_order(*names: str) -> list[dict[str, Any]]:
    """Grafana's `organize` transformation: the table's columns in this order (a pivot's are not)."""
    return [{"id": "organize", "options": {"indexByName": {name: i for i, name in enumerate(names)},
                                           "excludeByName": {}, "renameByName": {}}}]


WARD_TABLE_COLUMNS = ("patient_id", *(name for field, _, _ in WARD_TABLE_FIELDS for name in (field, f"{field}_age_s")))


def ward_dashboard() -> dict[str, Any]:
    patient_link = {"matcher": {"id": "byName", "options": "patient_id"}, "properties": [
        {"id": "displayName", "value": "Patient"},
        {"id": "links", "value": [{"title": "Open patient",
                                   "url": "/d/vigil-patient?var-patient=${__data.fields.patient_id}"}]}]}
    device_overrides = [
        patient_link,
        {"matcher": {"id": "byName", "options": "readings_15m"}, "properties": [
            {"id": "displayName", "value": "Readings, last 15 min"},
            {"id": "thresholds", "value": _thresholds((None, "red"), (1, "green"))},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
        {"matcher": {"id": "byName", "options": "last_seen"}, "properties": [
            {"id": "displayName", "value": "Last heard"}, {"id": "unit", "value": "dateTimeAsLocal"}]},
        {"matcher": {"id": "byName", "options": "silent_for_s"}, "properties": [
            {"id": "displayName", "value": "Silent for"}, {"id": "unit", "value": "dtdurations"},
            {"id": "thresholds", "value": _thresholds(*_AGE_STEPS)},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
    ]
    return {
        "uid": "vigil-ward", "title": "Vigil · Ward", "tags": ["vigil"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "description": "Every patient at a glance, sickest first. Vigil supports clinicians; it does not replace them.",
        "templating": {"list": [_bucket_variable()]},
        "panels": [
            {"id": 1, "type": "table", "title": "Patients, sickest first (latest values, however old)",
             "description": "The latest value of each, with how long ago it was measured (orange after 5 min, red "
                            "after 15). Patients whose device went quiet stay listed. 'partial': the latest NEWS2 was "
                            "scored with parameters missing and may understate. The dashboard's time range does not "
                            "apply: values up to 30 days old are shown.",
             "datasource": DATASOURCE, "gridPos": {"x": 0, "y": 0, "w": 16, "h": 14},
             "fieldConfig": {"defaults": {}, "overrides": [patient_link, *_ward_table_overrides()]},
             "transformations": _column_order(*WARD_TABLE_COLUMNS),
             "targets": [{"refId": "A", "datasource": DATASOURCE, "query": ward_query()}]},
            {"id": 2, "type": "table", "title": "Devices: readings in the last 15 min (0: silent)",
             "description": "Every patient heard from in the last 30 days, quietest first: readings in the last "
                            "15 minutes, when the device was last heard and how long ago.",
             "datasource": DATASOURCE, "gridPos": {"x": 16, "y": 0, "w": 8, "h": 14},
             "fieldConfig": {"defaults": {}, "overrides": device_overrides},
             "transformations": _column_order("patient_id", "readings_15m", "last_seen", "silent_for_s"),
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
