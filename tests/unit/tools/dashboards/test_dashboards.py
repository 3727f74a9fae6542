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

from vigil.tools.dashboards.definitions import DATASOURCE_UID, all_dashboards, panel_queries
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
    assert [s["uid"] for s in sources] == [DATASOURCE_UID] and sources[0]["jsonData"]["version"] == "Flux"
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
        source = grafana.datasources[DATASOURCE_UID]
        assert source["jsonData"] == {"version": "Flux", "organization": "vigil", "defaultBucket": "vitals"}
        assert source["secureJsonData"] == {"token": "read-token"}
        second = publish(api, **{**INFLUX, "influx_url": "http://influx.ward:8086"})
        assert second["datasource"] == "updated" and [d["version"] for d in second["dashboards"]] == [2, 2]
        assert grafana.datasources[DATASOURCE_UID]["url"] == "http://influx.ward:8086"
        assert list(grafana.folders) == ["vigil"] and len(grafana.datasources) == 1
        stored = {uid: d["dashboard"] for uid, d in grafana.dashboards.items()}
        assert set(stored) == {"vigil-ward", "vigil-patient"}
        for dashboard in all_dashboards():
            assert stored[dashboard["uid"]]["panels"] == dashboard["panels"]
            assert grafana.dashboards[dashboard["uid"]]["folderUid"] == "vigil"


def test_publish_with_a_wrong_token_fails_loudly():
    with GrafanaStandIn("glsa_vigil") as grafana:
        api = GrafanaApi.from_url(grafana.url, credential="wrong", timeout=5)
        with pytest.raises(GrafanaUnauthorizedError):
            publish(api, **INFLUX)
        assert not grafana.dashboards
