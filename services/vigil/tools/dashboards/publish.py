"""Dashboards as files (Grafana file provisioning) and through Grafana's HTTP API (grafana-client).

Publishing is idempotent: the folder and the data source are created once and updated after;
dashboards are saved with `overwrite`, keyed by their uid.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def publish(grafana: "GrafanaApi", *, influx_url: str, influx_org: str, influx_bucket: str, influx_token: str) -> dict[str, Any]:
    """Create or update the Vigil folder, the InfluxDB data source and every dashboard."""
    from grafana_client.client import GrafanaClientError

    try:
        grafana.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        log.info("grafana folder created", extra={"uid": FOLDER_UID})
    source = datasource(influx_url, influx_org, influx_bucket, influx_token)
    try:
        grafana.datasource.get_datasource_by_uid(DATASOURCE_UID)
        grafana.datasource.update_datasource_by_uid(DATASOURCE_UID, source)
        source_action = "updated"
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.datasource.create_datasource(source)
        source_action = "created"
    saved = []
    for dashboard in all_dashboards():
        response = grafana.dashboard.update_dashboard({
            "dashboard": {**dashboard, "id": None}, "folderUid": FOLDER_UID, "overwrite": True,
            "message": "vigil dashboards publish",
        })
        saved.append({"uid": dashboard["uid"], "version": response.get("version"), "url": response.get("url")})
    log.info("grafana dashboards published", extra={"dashboards": len(saved), "datasource": source_action})
    return {"folder": FOLDER_UID, "datasource": source_action, "dashboards": saved}
