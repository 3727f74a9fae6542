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
from stack import enrol_devices, influx_seqs, own_schema, wait_for, write_roster

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
# Rows the services update in place: compared by id, and the incident's revision may only have grown.
MUTABLE = {"alerts": lambda row: (row.alert_id, 0), "incidents": lambda row: (row.incident_id, row.revision)}


def password_for(device_id: str) -> str:
    return f"{device_id}-secret"


@pytest.fixture
def drill(servers, run_id, tmp_path):
    """A schema and a bucket of this run's own (made as an operator makes them: the services on their own
    roles and tokens), and the stack's environment pointing at them. Backup and restore run as the owner."""
    from influxdb_client import InfluxDBClient

    from vigil.shell.stores.influx_tokens import create_service_token

    schema, bucket = "bk" + uuid.uuid4().hex[:10], f"vitals-bk-{run_id}"
    urls = own_schema(servers, schema)
    admin = create_engine(servers["VIGIL_DATABASE_URL"])
    influx = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"])
    created = influx.buckets_api().create_bucket(bucket_name=bucket, org=servers["VIGIL_INFLUX_ORG"])
    processor_token = create_service_token(influx, created, "processor")
    env = {**os.environ, **run_topics(run_id), "VIGIL_DATABASE_URL": urls["owner"],
           "VIGIL_PROCESSOR_DATABASE_URL": urls["processor"], "VIGIL_NOTIFIER_DATABASE_URL": urls["notifier"],
           "VIGIL_PROCESSOR_INFLUX_TOKEN": processor_token.token,
           "VIGIL_INFLUX_BUCKET": bucket, "VIGIL_INFLUX_ROLLUP_BUCKET": bucket, "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}",
           "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}", "VIGIL_LOG_LEVEL": "INFO"}
    yield env, admin, schema, bucket, influx
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()
    influx.authorizations_api().delete_authorization(processor_token)
    found = influx.buckets_api().find_bucket_by_name(bucket)
    if found is not None:
        influx.buckets_api().delete_bucket(found)
    influx.close()


def snapshot(database_url: str) -> dict:
    """Append-only tables: every row, as JSON text (JSON columns hold dicts). Updated ones: id -> revision."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        taken = {table.name: dict(MUTABLE[table.name](row) for row in conn.execute(select(table)))
                 if table.name in MUTABLE else
                 {json.dumps(list(row), sort_keys=True, default=str) for row in conn.execute(select(table))}
                 for table in TABLES}
    engine.dispose()
    return taken


def vigil(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def start_services(env: dict, plan, tmp_path, run_id: str) -> ServiceStack:
    stack = ServiceStack(env, tmp_path / "services", stop_grace_s=20)
    stack.create_topics()  # as the Kafka admin: no service may create topics
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
    assert manifest["influx"][0]["shards"] >= 1
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
        if table in MUTABLE:  # a running system updates these between the snapshot and the dump: same id, same or newer
            assert rows and before[table].keys() <= after[table].keys(), f"{table}: {before[table].keys() - after[table].keys()} lost"
            assert all(after[table][key] >= revision for key, revision in rows.items()), f"{table}: an older state restored"
        else:
            assert rows and rows <= after[table], f"{table}: {len(rows - after[table])} rows lost"
    assert json.loads(restored.stdout)["postgres"]["granted"].get("processor"), "the services' rights given again"
    processor = create_engine(env["VIGIL_PROCESSOR_DATABASE_URL"])
    with processor.connect() as conn:  # the restored store works for a service on its own role
        assert conn.execute(select(alerts.c.alert_id)).all()
    processor.dispose()
    for patient, seqs in before_seqs.items():
        assert seqs <= after_seqs[patient], f"{patient}: readings {sorted(seqs - after_seqs[patient])[:10]} lost"
