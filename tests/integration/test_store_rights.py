"""Least privilege on the real PostgreSQL and InfluxDB (issue 15, point 1): each service of the scaled path,
with the credentials deploy/local gave it and nothing else, against every table (select, insert, update,
delete) and the series buckets (read, write). Every cell is tried, not looked up: a privilege is
`granted` when PostgreSQL gets past its permission check (the statement runs, or fails on something
else, such as a NOT NULL column, in a transaction that is rolled back), `refused` when it answers
insufficient_privilege (42501). The matrix is printed (`pytest -s`): service | resource | action |
expected | got.

The credentials reach each service the way they reach a real one: the stack's environment for that
service (tools/service_credentials.py), read through vigil.settings (`VIGIL_DATABASE_URL_FILE`, owner-only
files). The tables are this run's own schema, made and granted as `vigil migrate` does; the buckets are
deploy/local's `vitals` (the tokens are scoped to it) and a bucket of this run's own, which no service
token may touch.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from stack import own_schema

from vigil.settings import VigilSettings
from vigil.shell.stores.grants import SERVICE_GRANTS
from vigil.shell.stores.influx_tokens import INFLUX_SERVICE_RIGHTS, description_of
from vigil.shell.stores.tables import metadata
from vigil.tools.service_credentials import service_env

pytestmark = pytest.mark.integration

SERVICES = ("gateway", "processor", "notifier", "grafana", "trends")
ACTIONS = ("select", "insert", "update", "delete")
PROBE = "vigil_rights_probe"  # the measurement written by the write probes, deleted after


def statement(table, action: str) -> str:
    """The smallest statement that needs exactly that privilege (no other column read)."""
    column = next((c.name for c in table.columns if not c.primary_key), list(table.columns)[-1].name)
    return {"select": f'SELECT * FROM "{table.name}" LIMIT 0',
            "insert": f'INSERT INTO "{table.name}" DEFAULT VALUES',
            "update": f'UPDATE "{table.name}" SET "{column}" = NULL WHERE false',
            "delete": f'DELETE FROM "{table.name}" WHERE false'}[action]


def attempt(engine, sql: str) -> str:
    """`granted` or `refused` (insufficient privilege), or what else stopped it (a trigger's refusal)."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(text(sql))
            return "granted"
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state == "42501":
                return "refused"
            if "append-only" in str(exc.orig):
                return "refused (trigger)"
            return "granted"  # past the permission check: a NOT NULL column, a constraint
        finally:
            transaction.rollback()


def settings_of(service: str, servers: dict[str, str], monkeypatch) -> VigilSettings:
    """What `service` reads from its environment (Grafana and trend readers: their files too): its own
    credentials only, through vigil.settings (VIGIL_..._FILE, owner-only files)."""
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("VIGIL_")]:
            patch.delenv(key)
        for key, value in service_env(servers, service).items():
            patch.setenv(key, value)
        return VigilSettings()


@pytest.fixture
def schema_urls(servers):
    if not servers.get("VIGIL_PROCESSOR_DATABASE_URL_FILE"):
        pytest.fail("no service credentials in the environment: re-run deploy/local/up (it creates them)")
    schema = "r" + uuid.uuid4().hex[:10]
    urls = own_schema(servers, schema)
    yield urls
    owner = create_engine(servers["VIGIL_DATABASE_URL"])
    with owner.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    owner.dispose()


def owner_audit_rows(owner_url: str) -> list[tuple]:
    """The audit is append-only even for the owner (its triggers): no UPDATE at all, and no DELETE of a row
    younger than the retention (the row trigger fires on a row, so the DELETE meets a row just written)."""
    owner = create_engine(owner_url)
    young = ("INSERT INTO access_audit (t, subject, name, role, via, action, target, outcome) VALUES "
             "(extract(epoch from now()), 's', 'n', 'nurse', 'password', 'read', '', 'ok'); ")
    rows = [("owner", "access_audit", "update", "refused (trigger)",
             attempt(owner, statement(metadata.tables["access_audit"], "update"))),
            ("owner", "access_audit", "delete a recent row", "refused (trigger)",
             attempt(owner, young + 'DELETE FROM "access_audit"'))]
    owner.dispose()
    return rows


def rollup_bucket(admin, servers):
    """deploy/local's readers also read the rollups' own bucket (VIGIL_INFLUX_ROLLUP_BUCKET, kept longer)."""
    name = servers.get("VIGIL_INFLUX_ROLLUP_BUCKET")
    return admin.buckets_api().find_bucket_by_name(name) if name else None


def test_each_service_has_exactly_its_rights_on_postgresql_and_influxdb(servers, schema_urls, monkeypatch, run_id):
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.rest import ApiException

    rows: list[tuple[str, str, str, str, str]] = []
    settings = {service: settings_of(service, servers, monkeypatch) for service in SERVICES}
    schema = schema_urls["owner"].rsplit("%3D", 1)[1]

    # -- PostgreSQL: every table, every action, each service's own login ---------------------------
    for service in SERVICES:
        url = settings[service].database_url
        expected_login = service in SERVICE_GRANTS
        if url is None:
            rows.append((service, "postgresql", "login", "refused" if not expected_login else "granted", "no credentials"))
            continue
        assert "vigil_" + service in url and ":vigil@" not in url  # its own role, never the owner's
        engine = create_engine(f"{url}?options=-csearch_path%3D{schema}")
        for table in metadata.sorted_tables:
            for action in ACTIONS:
                expected = "granted" if action.upper() in SERVICE_GRANTS[service].get(table.name, ()) else "refused"
                rows.append((service, table.name, action, expected, attempt(engine, statement(table, action))))
        engine.dispose()
    rows += owner_audit_rows(schema_urls["owner"])

    # -- InfluxDB: the shared bucket the tokens are for, and a bucket of this run's own --------------
    url, org = servers["VIGIL_INFLUX_URL"], servers["VIGIL_INFLUX_ORG"]
    admin = InfluxDBClient(url=url, token=servers["VIGIL_INFLUX_TOKEN"], org=org)
    vitals = admin.buckets_api().find_bucket_by_name(servers["VIGIL_INFLUX_BUCKET"])
    other = admin.buckets_api().create_bucket(bucket_name=f"rights-{run_id}", org=org)
    rollups = rollup_bucket(admin, servers)
    try:
        tokens = {service: settings[service].influx_token for service in SERVICES}
        by_token = {a.token: a for a in admin.authorizations_api().find_authorizations(org_id=vitals.org_id)}
        for service in SERVICES:
            token = tokens[service]
            right = INFLUX_SERVICE_RIGHTS.get(service)
            if token is None:
                for bucket in (vitals, other):
                    for action in ("read", "write"):
                        rows.append((service, f"influx {bucket.name}", action, "refused", "no token"))
                continue
            assert token != servers["VIGIL_INFLUX_TOKEN"]  # never the operator's
            authorization = by_token[token]  # deploy/local's token has exactly the one right of the table
            assert authorization.description == description_of(service, vitals.name, rollups and rollups.name)
            assert [(p.action, p.resource.type, p.resource.id) for p in authorization.permissions] == [
                (right, "buckets", b.id) for b in ([vitals] + ([rollups] if rollups and right == "read" else []))]
            with InfluxDBClient(url=url, token=token, org=org) as client:
                for bucket in (vitals, other):
                    for action in ("read", "write"):
                        expected = "granted" if bucket is vitals and action == right else "refused"
                        try:
                            if action == "read":
                                client.query_api().query(f'from(bucket: "{bucket.name}") |> range(start: -1m) |> limit(n: 1)')
                            else:
                                client.write_api(write_options=SYNCHRONOUS).write(
                                    bucket=bucket.name, record=f"{PROBE},service={service} v=1i {time.time_ns()}")
                            got = "granted"
                        except ApiException as exc:
                            got = "refused" if exc.status in (401, 403, 404) else f"error {exc.status}"
                        rows.append((service, f"influx {bucket.name}", action, expected, got))
    finally:
        admin.delete_api().delete("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", f'_measurement="{PROBE}"',
                                  bucket=vitals.name, org=org)
        admin.buckets_api().delete_bucket(other)
        admin.close()

    widths = [max(len(str(row[i])) for row in rows + [("service", "resource", "action", "expected", "got")])
              for i in range(5)]
    lines = [" | ".join(str(v).ljust(w) for v, w in zip(row, widths))
             for row in [("service", "resource", "action", "expected", "got"), *rows]]
    wrong = [row for row in rows if row[3] != row[4] and not (row[3] == "refused" and row[4] == "no token")
             and not (row[3] == "refused" and row[4] == "no credentials")]
    print("\n" + "\n".join(lines))
    print(f"{len(rows)} cells, {sum(1 for r in rows if r[4] == 'granted')} granted, {len(wrong)} not as expected")
    assert wrong == []


def test_a_service_role_on_a_schema_older_than_vigil_refuses_to_start_and_says_run_vigil_migrate(servers):
    """A service's role may not create or alter anything: on a schema that lacks Vigil's tables it stops at
    once with what to do, instead of half-working (the owner's `vigil migrate` makes and grants them)."""
    from stack import in_schema

    from vigil.shell.stores.sql import SchemaBehind, SqlStore

    schema = "e" + uuid.uuid4().hex[:10]
    owner = create_engine(servers["VIGIL_DATABASE_URL"])
    with owner.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO vigil_notifier"))
    try:
        notifier = open(servers["VIGIL_NOTIFIER_DATABASE_URL_FILE"]).read().strip()
        with pytest.raises(SchemaBehind, match="run `vigil migrate` with the schema owner's VIGIL_DATABASE_URL"):
            SqlStore(in_schema(notifier, schema))
        with owner.connect() as conn:  # and it created nothing
            assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalar() == 0
    finally:
        with owner.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        owner.dispose()
