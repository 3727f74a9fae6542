"""`vigil dashboards export` and `vigil dashboards publish`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("deploy/grafana/dashboards")


def _export(args: argparse.Namespace) -> int:
    from vigil.tools.dashboards.publish import export

    for path in export(Path(args.dir)):
        print(path)
    return 0


def postgres_source(url: str, sslmode: str = "require") -> dict[str, Any]:
    """The annotations' data source from a URL (`postgresql://reader:pw@host:5432/vigil`), as
    Grafana's server reaches the database, with a SELECT-only role (docs/dashboards.md)."""
    from sqlalchemy.engine import make_url

    from vigil.tools.dashboards.annotations import postgres_datasource

    parsed = make_url(url)
    return postgres_datasource(f"{parsed.host}:{parsed.port or 5432}", parsed.database or "", parsed.username or "",
                               parsed.password or "", str(parsed.query.get("sslmode", sslmode)))


def _publish(args: argparse.Namespace) -> int:
    from grafana_client import GrafanaApi

    from vigil.tools.dashboards.publish import publish
    from vigil.settings import VigilSettings

    settings = VigilSettings()
    token = os.environ.get("VIGIL_GRAFANA_TOKEN")
    if not token or not settings.influx_token:
        print("vigil dashboards publish: set VIGIL_GRAFANA_TOKEN (a Grafana service-account token) and "
              "VIGIL_INFLUX_TOKEN (a read token for the data source)", file=sys.stderr)
        return 2
    grafana = GrafanaApi.from_url(args.grafana_url, credential=token, timeout=10)
    postgres_url = args.postgres_url or os.environ.get("VIGIL_GRAFANA_DATABASE_URL")
    if not postgres_url and os.environ.get("VIGIL_GRAFANA_DATABASE_URL_FILE"):  # deploy/local's file (owner-only)
        from vigil.settings import read_secret_file

        postgres_url = read_secret_file("VIGIL_GRAFANA_DATABASE_URL_FILE", os.environ["VIGIL_GRAFANA_DATABASE_URL_FILE"])
    if not postgres_url:
        print("vigil dashboards publish: no --postgres-url / VIGIL_GRAFANA_DATABASE_URL(_FILE): the patient dashboard "
              "will show no alert annotations", file=sys.stderr)
    result = publish(grafana, influx_url=args.influx_url or settings.influx_url, influx_org=settings.influx_org,
                     influx_bucket=settings.influx_bucket, influx_token=settings.influx_token,
                     postgres=postgres_source(postgres_url) if postgres_url else None)
    print(json.dumps(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    dashboards = sub.add_parser("dashboards", help="the physicians' Grafana dashboards, as code")
    actions = dashboards.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the dashboards as JSON for Grafana's file provisioning")
    export.add_argument("--dir", default=str(DEFAULT_DIR))
    export.set_defaults(func=_export)
    publish = actions.add_parser("publish", help="create or update folder, data source and dashboards through "
                                 "Grafana's HTTP API (VIGIL_GRAFANA_TOKEN; InfluxDB from VIGIL_INFLUX_*)")
    publish.add_argument("--grafana-url", required=True, help="e.g. http://127.0.0.1:3000")
    publish.add_argument("--influx-url", help="InfluxDB as Grafana's server reaches it (default VIGIL_INFLUX_URL)")
    publish.add_argument("--postgres-url", help="PostgreSQL for the alert annotations, as Grafana's server reaches it, "
                         "with a SELECT-only role (default VIGIL_GRAFANA_DATABASE_URL; sslmode=require unless the URL "
                         "says otherwise)")
    publish.set_defaults(func=_publish)
