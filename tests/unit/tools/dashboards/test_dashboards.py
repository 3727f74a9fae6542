"""Dashboards as code: the committed files are current, provisioning agrees with them, and
publishing through grafana-client against a Grafana stand-in is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaUnauthorizedError
from standins.grafana_api import GrafanaStandIn

from vigil.tools.dashboards.annotations import POSTGRES_UID, annotation_queries, postgres_datasource
from vigil.tools.dashboards.cli import postgres_source
from vigil.tools.dashboards.definitions import DATASOURCE_UID, all_dashboards, panel_queries, patient_dashboard, ward_dashboard
from vigil.tools.dashboards.flux import LATEST_LOOKBACK
from vigil.tools.dashboards.publish import export, publish

REPO = Path(__file__).resolve().parents[4]
GRAFANA = REPO / "deploy" / "grafana"
INFLUX = {"influx_url": "http://127.0.0.1:18086", "influx_org": "vigil", "influx_bucket": "vitals",
          "influx_token": "read-token"}


def test_committed_dashboard_files_are_what_the_code_builds(tmp_path):
    for path in export(tmp_path):
        committed = GRAFANA / "dashboards" / path.name
        assert committed.exists(), f"run `vigil dashboards export`: {committed} is missing"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), f"run `vigil dashboards export`: {path.name}"


def test_provisioning_files_point_at_the_dashboards_data_source():
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/vigil.yaml").read_text())["datasources"]
    assert [s["uid"] for s in sources] == [DATASOURCE_UID, POSTGRES_UID] and sources[0]["jsonData"]["version"] == "Flux"
    assert sources[1]["type"] == "postgres" and sources[1]["secureJsonData"] == {"password": "${VIGIL_GRAFANA_PG_PASSWORD}"}
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/vigil.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["folderUid"] == "vigil"
    for dashboard in all_dashboards():
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == DATASOURCE_UID
            assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for _, query in panel_queries(dashboard):
            assert '"${bucket}"' in query  # every query honours the bucket variable


def test_publish_creates_then_updates_idempotently():
    with GrafanaStandIn("glsa_vigil") as grafana:
        api = GrafanaApi.from_url(grafana.url, credential="glsa_vigil", timeout=5)
        first = publish(api, **INFLUX)
        assert first["datasource"] == "created" and [d["version"] for d in first["dashboards"]] == [1, 1]
        assert first["postgres_datasource"] == "skipped"
        source = grafana.datasources[DATASOURCE_UID]
        assert source["jsonData"] == {"version": "Flux", "organization": "vigil", "defaultBucket": "vitals"}
        assert source["secureJsonData"] == {"token": "read-token"}
        postgres = postgres_source("postgresql+psycopg://grafana_reader:s3cret@db.ward:5433/vigil")
        second = publish(api, **{**INFLUX, "influx_url": "http://influx.ward:8086"}, postgres=postgres)
        assert second["datasource"] == "updated" and [d["version"] for d in second["dashboards"]] == [2, 2]
        assert second["postgres_datasource"] == "created"
        assert grafana.datasources[DATASOURCE_UID]["url"] == "http://influx.ward:8086"
        stored_pg = grafana.datasources[POSTGRES_UID]
        assert (stored_pg["type"], stored_pg["url"], stored_pg["user"]) == ("postgres", "db.ward:5433", "grafana_reader")
        assert stored_pg["jsonData"]["database"] == "vigil" and stored_pg["jsonData"]["sslmode"] == "require"
        assert stored_pg["secureJsonData"] == {"password": "s3cret"}
        third = publish(api, **INFLUX, postgres=postgres)
        assert third["postgres_datasource"] == "updated"
        assert list(grafana.folders) == ["vigil"] and len(grafana.datasources) == 2
        stored = {uid: d["dashboard"] for uid, d in grafana.dashboards.items()}
        assert set(stored) == {"vigil-ward", "vigil-patient"}
        for dashboard in all_dashboards():
            assert stored[dashboard["uid"]]["panels"] == dashboard["panels"]
            assert stored[dashboard["uid"]].get("annotations") == dashboard.get("annotations")
            assert grafana.dashboards[dashboard["uid"]]["folderUid"] == "vigil"


def test_publish_with_a_wrong_token_fails_loudly():
    with GrafanaStandIn("glsa_vigil") as grafana:
        api = GrafanaApi.from_url(grafana.url, credential="wrong", timeout=5)
        with pytest.raises(GrafanaUnauthorizedError):
            publish(api, **INFLUX)
        assert not grafana.dashboards


def _override(panel: dict, name: str) -> dict:
    found = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"] == {"id": "byName", "options": name}]
    assert found, f"{panel['title']}: no override for {name}"
    return {p["id"]: p["value"] for o in found for p in o["properties"]}


def test_vital_trends_are_min_max_bands_not_means():
    panels = {p["title"]: p for p in patient_dashboard()["panels"]}
    for title, label in (("Heart rate", "HR"), ("SpO2", "SpO2"), ("Respiratory rate", "RR"),
                         ("Temperature", "Temp"), ("NEWS2", "NEWS2")):
        panel = panels[title]
        flux = "\n".join(t["query"] for t in panel["targets"])
        for fn in ("min", "max", "mean"):  # every series the overrides name is one a query yields
            assert f"fn: {fn}," in flux and f'_value: "{label} {fn}"' in flux, (title, fn)
        assert _override(panel, f"{label} max")["custom.fillBelowTo"] == f"{label} min"


def test_partial_news2_is_drawn_apart():
    news2 = next(p for p in patient_dashboard()["panels"] if p["title"] == "NEWS2")
    assert any('_value: "NEWS2 partial"' in t["query"] and "r.news2_partial" in t["query"] for t in news2["targets"])
    assert _override(news2, "NEWS2 partial")["custom.drawStyle"] == "points"
    ward = ward_dashboard()["panels"][0]
    mapping = _override(ward, "news2_partial")["mappings"][0]["options"]
    assert mapping["1"]["text"] == "partial" and mapping["0"]["text"] == "complete"


def test_ward_tables_show_every_latest_value_with_its_age_whatever_the_time_range():
    for panel in ward_dashboard()["panels"]:
        flux = panel["targets"][0]["query"]
        assert "-6h" not in flux and "v.timeRangeStart" not in flux and f"range(start: {LATEST_LOOKBACK})" in flux
    table, devices = ward_dashboard()["panels"]
    for field in ("news2", "news2_partial", "spo2", "hr", "risk"):
        age = _override(table, f"{field}_age_s")
        assert age["unit"] == "dtdurations" and [s["value"] for s in age["thresholds"]["steps"]] == [None, 300, 900]
    assert _override(devices, "silent_for_s")["unit"] == "dtdurations"
    assert "${__data.fields.patient_id}" in _override(table, "patient_id")["links"][0]["url"]
    order = table["transformations"][0]["options"]["indexByName"]
    assert sorted(order, key=order.get)[:4] == ["patient_id", "news2", "news2_age_s", "news2_partial"]


def test_alert_annotations_are_sql_on_the_postgres_source_with_the_patient_quoted():
    dashboard = patient_dashboard()
    annotations = dashboard["annotations"]["list"]
    assert annotations[0]["builtIn"] == 1  # Grafana's own annotations stay first
    queries = annotation_queries(dashboard)
    assert [name for name, _ in queries] == ["Alerts", "Acknowledged / escalated / resolved"]
    for annotation in annotations[1:]:
        assert annotation["datasource"]["uid"] == POSTGRES_UID == annotation["target"]["datasource"]["uid"]
        assert annotation["target"]["format"] == "table" and annotation["target"]["rawQuery"] is True
    for _, sql in queries:
        assert "${patient:sqlstring}" in sql and sql.replace("${patient:sqlstring}", "").count("patient}") == 0
        assert "$__unixEpochFrom()" in sql and "$__unixEpochTo()" in sql and ' AS "time"' in sql
    assert postgres_datasource("db:5432", "vigil", "r", "p")["type"] == "postgres"
