"""`vigil retention run|influx`: the retention purge outside `vigil run` (docs/data.md, "Retention").

`run` purges the SQL store once (VIGIL_DATABASE_URL: the scaled path's PostgreSQL; or the embedded
SQLite file when `vigil run` is stopped), kind by kind, and prints the rows deleted per kind: for
a cron job or a systemd timer, as the schema's owner (the services' own roles may delete nothing).
It sets the access audit's DELETE trigger to VIGIL_RETAIN_AUDIT_DAYS, as `vigil migrate` does.

`influx` sets the InfluxDB buckets' retention rules: VIGIL_INFLUX_BUCKET kept
VIGIL_RETAIN_READINGS_DAYS, VIGIL_INFLUX_ROLLUP_BUCKET (created when missing) kept
VIGIL_RETAIN_ROLLUPS_DAYS. Run it when deploying and after changing either setting.
"""

from __future__ import annotations

import argparse
import json


def _run(args: argparse.Namespace) -> int:
    from vigil.runtimes.shared.sql_purge import SqlPurge
    from vigil.settings import VigilSettings
    from vigil.shell.observability.logs import configure_logging
    from vigil.shell.observability.metrics import Metrics
    from vigil.shell.stores.sql import SqlStore

    settings = VigilSettings()
    configure_logging(settings.log_level)
    store = SqlStore(settings.database_url or settings.sqlite_url(), audit_keep_days=settings.retain_audit_days)
    try:
        purged = SqlPurge(settings, store.engine, Metrics()).purge()
    finally:
        store.close()
    failed = sorted(kind for kind, days in settings.retention_days().items() if days > 0 and kind not in purged)
    print(json.dumps({"purged": purged, "failed": failed}))
    return 1 if failed else 0


def _influx(args: argparse.Namespace) -> int:
    from influxdb_client import InfluxDBClient

    from vigil.settings import VigilSettings
    from vigil.shell.observability.logs import configure_logging
    from vigil.shell.trends.influx_buckets import apply_retention

    settings = VigilSettings()
    configure_logging(settings.log_level)
    client = InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org)
    try:
        done = apply_retention(client, settings.influx_org, settings.influx_bucket, settings.retain_readings_days,
                               settings.rollup_bucket(), settings.retain_rollups_days)
    finally:
        client.close()
    print(json.dumps([{"bucket": d.bucket, "retention_s": d.retention_s, "changed": d.changed, "created": d.created}
                      for d in done]))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    retention = sub.add_parser("retention", help="purge what is past its retention (VIGIL_RETAIN_*_DAYS)")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="purge the SQL store once (VIGIL_DATABASE_URL, or the embedded "
                                   "SQLite file): for a cron job or a systemd timer")
    run.set_defaults(func=_run)
    influx = retention_sub.add_parser("influx", help="set the InfluxDB buckets' retention (VIGIL_INFLUX_BUCKET, "
                                      "VIGIL_INFLUX_ROLLUP_BUCKET, created when missing)")
    influx.set_defaults(func=_influx)
