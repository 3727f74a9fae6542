"""Dashboards as files (Grafana file provisioning) and through Grafana's HTTP API (grafana-client).

Publishing is idempotent: the folder and the data sources are created once and updated after;
dashboards are saved with `overwrite`, keyed by their uid. The PostgreSQL data source (alert
annotations) is published only when its connection is given: without it the trends still
show, with no alert markers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.tools.dashboards.annotations import POSTGRES_UID
from vigil.tools.dashboards.definitions import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID, all_dashboards, datasource

if TYPE_CHECKING:  # grafana-client comes with the `scale` extra; exporting files needs none of it
    from grafana_client import GrafanaApi

log = logging.getLogger("vigil.tools.dashboards")


def export(directory: Path) -> list[Path]:
    """Write every dashboard as `<uid>.json` for Grafana's file provisioning."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in all_dashboards():
        path = directory / f"{dashboard['uid']}.json"
        path.write_text(json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _missing(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def _upsert_datasource(grafana: "GrafanaApi", uid: str, source: dict[str, Any]) -> str:
    from grafana_client.client import GrafanaClientError

    try:
        grafana.datasource.get_datasource_by_uid(uid)
        grafana.datasource.update_datasource_by_uid(uid, source)
        return "updated"
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.datasource.create_datasource(source)
        return "created"


def publish(grafana: "GrafanaApi", *, influx_url: str, influx_org: str, influx_bucket: str, influx_token: str,
            postgres: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create or update the Vigil folder, the InfluxDB data source, the PostgreSQL one when
    `postgres` (annotations.postgres_datasource) is given, and every dashboard."""
    from grafana_client.client import GrafanaClientError

    try:
        grafana.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        log.info("grafana folder created", extra={"uid": FOLDER_UID})
    source_action = _upsert_datasource(grafana, DATASOURCE_UID,
                                       datasource(influx_url, influx_org, influx_bucket, influx_token))
    postgres_action = _upsert_datasource(grafana, POSTGRES_UID, postgres) if postgres else "skipped"
    if not postgres:
        log.warning("no PostgreSQL data source given: the patient dashboard shows no alert annotations")
    saved = []
    for dashboard in all_dashboards():
        response = grafana.dashboard.update_dashboard({
            "dashboard": {**dashboard, "id": None}, "folderUid": FOLDER_UID, "overwrite": True,
            "message": "vigil dashboards publish",
        })
        saved.append({"uid": dashboard["uid"], "version": response.get("version"), "url": response.get("url")})
    log.info("grafana dashboards published", extra={"dashboards": len(saved), "datasource": source_action,
                                                    "postgres_datasource": postgres_action})
    return {"folder": FOLDER_UID, "datasource": source_action, "postgres_datasource": postgres_action,
            "dashboards": saved}
