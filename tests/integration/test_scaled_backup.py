"""Issue 15, backup and restore of the scaled path, on the real servers: `vigil backup` while the
gateway, a Faust worker and the notifier run and a cohort publishes; the system destroyed (its
PostgreSQL schema dropped, its InfluxDB bucket deleted); `vigil restore`; every reading, alert,
alert event, incident, incident link, incident audit row and access-audit row that existed when
the backup began is found again, row for row.

Each run has its own PostgreSQL schema (`search_path` in the URL) and its own bucket, so
destroying them touches nothing else on the shared servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, select, text
from stack import enrol_devices, influx_seqs, wait_for, write_roster

from vigil.shell.stores.access_audit import AuditTrail
from vigil.shell.stores.tables import access_audit, alert_events, alerts, incident_alerts, incident_audit, incidents
from vigil.tools.ports import free_port
from vigil.tools.stack import ServiceStack, run_topics
from vigil_simulators.cohort import parse_scenarios, plan_cohort
from vigil_simulators.fleet import Fleet, FleetClock
from vigil_simulators.per_device import publish_fleet_per_device

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RATE, HOURS = 0.2, 3.0
TABLES = (alerts, alert_events, incidents, incident_alerts, incident_audit, access_audit)


def password_for(device_id: str) -> str:
    return f"{device_id}-secret"


@pytest.fixture
def drill(servers, run_id, tmp_path):
    """A schema and a bucket of this run's own, and the stack's environment pointing at them."""
    from influxdb_client import InfluxDBClient

    base, schema, bucket = servers["VIGIL_DATABASE_URL"], "bk" + uuid.uuid4().hex[:10], f"vitals-bk-{run_id}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    influx = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"])
    influx.buckets_api().create_bucket(bucket_name=bucket, org=servers["VIGIL_INFLUX_ORG"])
    env = {**os.environ, **run_topics(run_id), "VIGIL_DATABASE_URL": f"{base}?options=-csearch_path%3D{schema}",
           "VIGIL_INFLUX_BUCKET": bucket, "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}",
           "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}", "VIGIL_LOG_LEVEL": "INFO"}
    yield env, admin, schema, bucket, influx
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()
    found = influx.buckets_api().find_bucket_by_name(bucket)
    if found is not None:
        influx.buckets_api().delete_bucket(found)
    influx.close()


def snapshot(database_url: str) -> dict[str, set[str]]:
    """Every row of the tables compared, as JSON text (JSON columns hold dicts)."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        taken = {table.name: {json.dumps(list(row), sort_keys=True, default=str) for row in conn.execute(select(table))}
                 for table in TABLES}
    engine.dispose()
    return taken


def vigil(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def start_services(env: dict, plan, tmp_path, run_id: str) -> ServiceStack:
    stack = ServiceStack(env, tmp_path / "services", stop_grace_s=20)
    enrol_devices([p.device_id for p in plan.patients], password_for)
    stack.env["VIGIL_ROSTER"] = str(write_roster(tmp_path / "roster.yaml", plan.roster()))
    stack.start_ready("gateway", "ingest", "--id", f"gw-{run_id}", timeout=60, statuses=("ok",))
    stack.start("w1", "processor", "worker", port=free_port())
    stack.wait_healthy("w1", 90, statuses=("ok",))
    stack.start("notifier", "notifier", "--http-port", str(free_port()))
    return stack


def test_a_backup_of_the_running_scaled_path_restores_every_row_and_reading(drill, servers, run_id, tmp_path):
    env, admin, schema, bucket, influx = drill
    (tmp_path / "services").mkdir()
    plan = plan_cohort(12, 5, time.time() - HOURS * 3600 - 120, HOURS * 3600, parse_scenarios("clinical"),
                       id_prefix=f"{run_id}-")
    patients = [p.patient_id for p in plan.patients]
    stack = start_services(env, plan, tmp_path, run_id)
    try:
        fleet, end = Fleet(plan, RATE, 4, 0.0), plan.start_t + plan.duration_s
        clock = FleetClock(time.time(), plan.start_t, (end - plan.start_t) / 40)
        publisher = threading.Thread(target=publish_fleet_per_device,
                                     args=(fleet, servers["VIGIL_MQTT_DEVICE_URL"], clock, end, password_for))
        publisher.start()
        engine = create_engine(env["VIGIL_DATABASE_URL"])

        def incidents_now() -> int:
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM incidents")).scalar()

        wait_for(incidents_now, 120, "an incident in the running system")
        AuditTrail(engine).write([{"t": time.time(), "subject": "nurse-1", "name": "Nurse One", "role": "nurse",
                                    "via": "password", "patient_id": p, "action": "read incidents", "target": "",
                                    "outcome": "ok", "status": 200, "address": "127.0.0.1", "patients": f" {p} "}
                                   for p in patients[:3]])
        engine.dispose()
        assert publisher.is_alive(), "the backup is taken while the devices still publish"
        before, before_seqs = snapshot(env["VIGIL_DATABASE_URL"]), influx_seqs(env, bucket, patients)
        backup = vigil(env, "backup", "--out", str(tmp_path / "backup"))
        assert backup.returncode == 0, backup.stderr
        publisher.join(120)
    finally:
        stack.stop()
    assert sum(map(len, before_seqs.values())) > 1000 and before["alerts"] and before["incident_audit"]
    assert len(before["access_audit"]) == 3
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["influx"]["shards"] >= 1
    assert oct((tmp_path / "backup" / "postgres.dump").stat().st_mode & 0o777) == "0o600", "owner-only"

    refused = vigil(env, "restore", "--from", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "not empty" in refused.stderr, "a restore never merges into live rows"

    with admin.begin() as conn:  # the disaster: the database and the series are gone
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    influx.buckets_api().delete_bucket(influx.buckets_api().find_bucket_by_name(bucket))

    restored = vigil(env, "restore", "--from", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    after, after_seqs = snapshot(env["VIGIL_DATABASE_URL"]), influx_seqs(env, bucket, patients)
    for table, rows in before.items():
        assert rows and rows <= after[table], f"{table}: {len(rows - after[table])} rows lost"
    for patient, seqs in before_seqs.items():
        assert seqs <= after_seqs[patient], f"{patient}: readings {sorted(seqs - after_seqs[patient])[:10]} lost"
