"""Helpers for the tests against the real servers that deploy/local starts (tests/run.sh does).

The services themselves run through vigil.tools.stack.ServiceStack (the `services` fixture),
the same class the scaled bench uses."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from vigil.shell.streams.kafka_login import kafka_security
from vigil.tools.stack import KAFKA_ADMIN, kafka_settings

REPO = Path(__file__).resolve().parents[2]


def influx_count(servers: dict[str, str], bucket: str) -> int:
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                '|> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq") |> group() |> count()')
        tables = client.query_api().query(flux)
        return sum(int(record.get_value()) for table in tables for record in table.records)


def patients_with_late_readings(servers: dict[str, str], bucket: str) -> set[str]:
    """Patients with a reading flagged `late` (new to Vigil, but behind the patient's state)."""
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                '|> filter(fn: (r) => r._measurement == "vitals" and r._field == "flags" and r._value =~ /late/)')
        return {record.values["patient_id"] for table in client.query_api().query(flux) for record in table.records}


def influx_counts_by_patient(servers: dict[str, str], bucket: str) -> dict[str, int]:
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                '|> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq") |> group(columns: ["patient_id"]) |> count()')
        return {record.values["patient_id"]: int(record.get_value())
                for table in client.query_api().query(flux) for record in table.records}


def enrol_devices(devices: list[str], password_for) -> None:
    lines = "".join(f"{d} {password_for(d)}\n" for d in devices)
    subprocess.run([str(REPO / "deploy/local/mqtt-device"), "add-many"], input=lines, text=True, check=True,
                   capture_output=True)


def write_roster(path: Path, roster: dict) -> Path:
    path.write_text(yaml.safe_dump(roster, sort_keys=False))
    return path


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def influx_seqs(servers: dict[str, str], bucket: str, patients: list[str]) -> dict[str, set[int]]:
    """The `seq` of every reading InfluxDB holds for these patients."""
    from influxdb_client import InfluxDBClient

    found: dict[str, set[int]] = {p: set() for p in patients}
    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        for patient in patients:
            flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                    f'|> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq" and r.patient_id == "{patient}")')
            for table in client.query_api().query(flux):
                found[patient].update(int(record.get_value()) for record in table.records)
    return found


def admin_kafka() -> dict:
    """A Kafka client's login as the admin (a test reads any topic, describes any group)."""
    return kafka_security(kafka_settings(KAFKA_ADMIN))


def topic_records(bootstrap: str, topic: str) -> list:
    """Every record of a topic, from the beginning (for post-mortems), read as the admin."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> list:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                                    **admin_kafka())
        await consumer.start()
        out: list = []
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
                if not batch:
                    return out
                for records in batch.values():
                    out.extend(records)
        finally:
            await consumer.stop()

    return asyncio.run(read())


def explain_missing_readings(servers: dict[str, str], bucket: str, expected: dict[str, set[int]], readings_topic: str,
                             deadletter_topic: str) -> str:
    """Which readings are missing from InfluxDB, where they sit in Kafka, and what the workers said about them."""
    import base64
    import json

    got = influx_seqs(servers, bucket, list(expected))
    missing = {p: sorted(seqs - got[p]) for p, seqs in expected.items() if seqs - got[p]}
    extra = {p: sorted(got[p] - seqs) for p, seqs in expected.items() if got[p] - seqs}
    lines = [f"missing readings by patient (seq): {missing}", f"unexpected readings: {extra}"]
    wanted = {(p, s) for p, seqs in missing.items() for s in seqs}
    bootstrap = servers["VIGIL_KAFKA_BOOTSTRAP"]
    for record in topic_records(bootstrap, readings_topic):
        body = json.loads(record.value)
        seqs = [r["seq"] for r in body["readings"] if (body["patient_id"], r["seq"]) in wanted]
        if seqs:
            lines.append(f"readings p{record.partition}@{record.offset} {body['patient_id']} seqs {seqs} "
                         f"(record has {len(body['readings'])} readings, ts {record.timestamp})")
    for record in topic_records(bootstrap, deadletter_topic):
        body = json.loads(record.value)
        if body.get("patient_id") in missing:
            raw = base64.b64decode(body["raw_b64"])[:80]
            lines.append(f"deadletter @{record.offset} {body['patient_id']} {body['reason']}: {body['detail']} raw={raw!r}")
    return "\n".join(lines)


def consumer_group(bootstrap: str, group_id: str) -> tuple[str, int]:
    """A consumer group's state (e.g. "Stable", "PreparingRebalance") and how many members it has."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def describe() -> tuple[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **admin_kafka())
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([group_id])
        finally:
            await admin.close()
        group = response.groups[0]
        return group[2], len(group[5])

    return asyncio.run(describe())


def in_schema(url: str, schema: str) -> str:
    """The same login, with `schema` first (and only) on its search path."""
    return f"{url}?options=-csearch_path%3D{schema}"


def own_schema(servers: dict[str, str], schema: str) -> dict[str, str]:
    """A schema of the run's own, made as an operator makes the shared one: created by the owner, its
    tables made and each service role given its rights (`vigil migrate`). Returns the URL into it of
    the owner (`owner`) and of each service role (its own login: tools/service_credentials.py)."""
    from sqlalchemy import create_engine, text

    from vigil.shell.stores.grants import grant
    from vigil.shell.stores.sql import SqlStore

    owner = servers["VIGIL_DATABASE_URL"]
    engine = create_engine(owner)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    store = SqlStore(in_schema(owner, schema))
    grant(store.engine)
    store.close()
    urls = {"owner": in_schema(owner, schema)}
    for service in ("processor", "notifier", "grafana"):
        file = servers.get(f"VIGIL_{service.upper()}_DATABASE_URL_FILE")
        if file:
            urls[service] = in_schema(Path(file).read_text().strip(), schema)
    return urls


def migrate_shared(servers: dict[str, str]) -> dict[str, str]:
    """The shared schema current and every service role given its rights: `vigil migrate`, as the owner.
    Returns service -> role granted."""
    from vigil.shell.stores.grants import grant
    from vigil.shell.stores.sql import SqlStore

    store = SqlStore(servers["VIGIL_DATABASE_URL"])
    try:
        return grant(store.engine)
    finally:
        store.close()


def ward_trend_rows(database_url: str, run_id: str) -> tuple[int, int, int]:
    """What the workers stored for the ward overview (VIGIL_WARD_TRENDS_SQL): readings in PostgreSQL,
    the readings their minute rollups count, and patients with latest values."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        like = {"like": f"{run_id}-%"}
        readings = conn.execute(text("SELECT count(*) FROM readings WHERE patient_id LIKE :like"), like).scalar_one()
        counted = conn.execute(text("SELECT coalesce(sum(readings_n), 0) FROM vital_rollups WHERE patient_id LIKE :like"),
                               like).scalar_one()
        patients = conn.execute(text("SELECT count(DISTINCT patient_id) FROM vital_latest WHERE patient_id LIKE :like"),
                                like).scalar_one()
    engine.dispose()
    return int(readings), int(counted), int(patients)


def assert_ward_trends_stored_once(servers, run_id: str, samples: int, patients: int) -> None:
    """Every reading in PostgreSQL once and counted once in its minute's rollup, replays and all."""
    database_url = servers["VIGIL_DATABASE_URL"]
    wait_for(lambda: ward_trend_rows(database_url, run_id)[0] >= samples or None, 60, "every reading in PostgreSQL")
    assert ward_trend_rows(database_url, run_id) == (samples, samples, patients)
