"""The scaled path's backup: PostgreSQL (pg_dump) and the vitals bucket (InfluxDB's backup API).

`vigil backup --out DIR` takes this when VIGIL_DATABASE_URL is PostgreSQL; `vigil restore --from
DIR` puts it back. DIR holds `manifest.json`, `postgres.dump`, `influx/` (the readings bucket's
manifest and shard snapshots) and `influx-rollups/` when the rollups have their own bucket
(VIGIL_INFLUX_ROLLUP_BUCKET), every file with its SHA-256, created owner-only.

The two stores are snapshotted one after the other, PostgreSQL first, while the services run:
each snapshot is consistent in itself. Readings stored in InfluxDB between the two have their
alerts raised again from Kafka on a replay (alert ids are stable, so deduplicated). Kafka itself
is not backed up: it is the transport, and its retention is the replay window
(docs/deployment.md, "Backup and restore").
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from vigil.shell.stores.influx_backup import InfluxServer, back_up_bucket, restore_bucket
from vigil.shell.stores.pg_backup import dump_database, restore_database

KIND = "vigil-scaled-backup"


def _influx(settings) -> InfluxServer | None:
    from vigil.settings import secret_value

    token = secret_value(settings.influx_token)
    return InfluxServer(settings.influx_url, token, settings.influx_org) if token else None


def _grant_again(database_url: str) -> dict[str, str]:
    """The dump holds no grants (`--no-privileges`): give each service role its rights again, as
    `vigil migrate` does, so the restored system runs on the same least-privilege roles."""
    from sqlalchemy import create_engine

    from vigil.shell.stores.grants import grant

    engine = create_engine(database_url)
    try:
        return grant(engine)
    finally:
        engine.dispose()


def _buckets(settings) -> list[tuple[str, str]]:
    """(directory in the backup, bucket): the readings' and, when they have their own, the rollups'."""
    pairs = [("influx", settings.influx_bucket)]
    if settings.rollup_bucket() != settings.influx_bucket:
        pairs.append(("influx-rollups", settings.rollup_bucket()))
    return pairs


def take_scaled_backup(settings, out_dir: Path) -> dict:
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists: a backup never overwrites")
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    manifest: dict = {"kind": KIND, "version": 1, "taken_at": datetime.now(timezone.utc).isoformat()}
    manifest["postgres"] = dump_database(settings.database_url, out_dir)
    server = _influx(settings)
    if server is not None:
        manifest["influx"] = []
        for directory, bucket in _buckets(settings):
            influx = back_up_bucket(server, bucket, out_dir / directory)
            manifest["influx"].append({"dir": directory, "bucket": bucket, "shards": len(influx["shards"])})
    manifest["seconds"] = round(time.monotonic() - started, 3)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def restore_scaled_backup(settings, from_dir: Path) -> dict:
    try:
        manifest = json.loads((from_dir / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"no readable manifest.json in {from_dir}: {exc}") from exc
    if manifest.get("kind") != KIND:
        raise ValueError(f"{from_dir} is not a scaled-path backup (kind {manifest.get('kind')!r})")
    done: dict = {"postgres": restore_database(settings.database_url, from_dir, manifest["postgres"])}
    done["postgres"]["granted"] = _grant_again(settings.database_url)
    if manifest.get("influx"):
        server = _influx(settings)
        if server is None:
            raise ValueError("the backup holds InfluxDB data but VIGIL_INFLUX_TOKEN is not set")
        now = dict(_buckets(settings))  # restored under today's names (VIGIL_INFLUX_BUCKET, _ROLLUP_BUCKET)
        done["influx"] = [restore_bucket(server, from_dir / entry["dir"], now.get(entry["dir"], entry["bucket"]))
                          for entry in manifest["influx"]]
    return done
