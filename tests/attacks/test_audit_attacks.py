"""Attacks on the access audit: rewriting or erasing who read what.

The table is append-only by the database's own triggers, so even a caller with SQL access through
Vigil's own connection cannot UPDATE, DELETE (or, on PostgreSQL, TRUNCATE) a row. Runs on SQLite
always and on PostgreSQL with the real servers (VIGIL_INTEGRATION=1). A list read is one row naming
its patients: a patient id that is a LIKE pattern (`_`, `%`) or differs only in case finds only its
own accesses in the export, on both databases. Then, through HTTP: a forged actor or forwarded
address does not change the row; reads are recorded against the patient shown.
(tests/attacks/conftest.py's `record_attack` is not on this branch: these tests assert directly.)
"""

from __future__ import annotations

import os
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DatabaseError

from vigil.core.events import Alert
from vigil.core.identity import Principal, Role
from vigil.settings import VigilSettings
from vigil.shell.desk.desk import AlertChange
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.access_audit import AuditTrail
from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import SqlStore, WriteBatch

MALLORY = Principal("local:mallory", "Mallory", Role.NURSE)
TAMPERING = [
    "UPDATE access_audit SET subject = 'local:someone-else' WHERE subject = 'local:mallory'",
    "UPDATE access_audit SET t = 0",
    "DELETE FROM access_audit WHERE subject = 'local:mallory'",
    "DELETE FROM access_audit",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigil.sqlite'}"
        return
    if os.environ.get("VIGIL_INTEGRATION") != "1":
        pytest.skip("PostgreSQL: real servers not started here (VIGIL_INTEGRATION=1)")
    base = os.environ["VIGIL_DATABASE_URL"]
    schema = "a" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.mark.parametrize("statement", TAMPERING)
async def test_an_audit_row_cannot_be_rewritten_or_erased_through_sql(database, statement):
    store = SqlStore(database)
    trail = AuditTrail(store.engine)
    await trail.record(MALLORY, "read incident", ["pt-a"], "in-1", "ok", "10.0.0.66", 200)
    try:
        with pytest.raises(DatabaseError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
        assert [(r["subject"], r["patient_id"]) for r in trail.export()] == [("local:mallory", "pt-a")]
    finally:
        store.engine.dispose()


LOOKALIKES = ["pt-1", "pt_1", "ptx1", "pt%1", "PT-1", "pt-10", "pt-1a", "pt/1", "pt/_1"]


async def test_a_patient_id_that_is_a_like_pattern_finds_only_its_own_accesses(database):
    """One list read of every look-alike is one row; then each look-alike read alone. Each patient's
    export must give the list read plus their own read, never another's: `pt_1` and `pt%1` would
    match every other id as LIKE patterns, `/` is the escape character, SQLite's LIKE ignores case."""
    store = SqlStore(database)
    trail = AuditTrail(store.engine)
    try:
        await trail.record(MALLORY, "read incidents", LOOKALIKES, "", "ok", "10.0.0.66", 200)
        for patient in LOOKALIKES:
            await trail.record(MALLORY, "read incident", [patient], f"in-{patient}", "ok", "10.0.0.66", 200)
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM access_audit")).scalar() == 1 + len(LOOKALIKES)
        for patient in LOOKALIKES:
            assert [(r["target"], r["patient_id"]) for r in trail.export(patient_id=patient)] == [
                ("", patient), (f"in-{patient}", patient)], patient
        for pattern in ["%", "_", "pt%", "pt_1 pt-1", " ", ""]:
            assert list(trail.export(patient_id=pattern)) == [], pattern
    finally:
        store.engine.dispose()


async def test_postgresql_also_refuses_truncate_and_a_second_start_keeps_one_trigger_of_each_kind(database):
    if not database.startswith("postgresql"):
        pytest.skip("TRUNCATE bypasses row triggers; SQLite has no TRUNCATE")
    store = SqlStore(database)
    again = SqlStore(database)  # a second process starting on the same schema
    try:
        await AuditTrail(store.engine).record(MALLORY, "read alerts", ["pt-a"])
        with pytest.raises(DatabaseError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text("TRUNCATE access_audit"))
        with store.engine.connect() as conn:
            triggers = conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('access_audit') "
                                         "AND NOT tgisinternal")).scalars().all()
        # One of each, however many processes started: UPDATE and TRUNCATE (statement), DELETE by age (row).
        assert sorted(triggers) == ["access_audit_append_only", "access_audit_delete_retention"]
        assert len(list(AuditTrail(store.engine).export())) == 1
    finally:
        store.engine.dispose()
        again.engine.dispose()


# -- through HTTP: what a caller sends cannot change who the audit says they are, or where from ---------

ALICE = Principal("local:alice", "Alice Nurse", Role.NURSE, wards=frozenset({"w1"}))


@pytest.fixture
async def ward(tmp_path, request):
    """The embedded runtime's app over one stored incident (alert a1 of pt-a); every request is Alice's,
    as the authentication middleware will make it. Indirect parameter: more settings."""
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime

    roster = Roster.model_validate({"patients": [{"patient_id": "pt-a", "ward": "w1", "devices": []}]})
    more = getattr(request, "param", {})
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False, **more), Registry(roster))
    raised = Alert(alert_id="a1", patient_id="pt-a", kind="hypoxaemia", category="clinical", severity="critical",
                   rule="SpO2 < 88", values={"spo2_pct": 85}, onset_t=1.0, raised_t=2.0, news2=None, contributors=[],
                   model_version=None, cleared_t=None, baselines={}, trends={})
    batch = WriteBatch(alerts=[AlertRow.of(raised)])
    runtime.alerting.desk.take([AlertChange("raised", raised, 2.0)], batch)
    runtime.store.write(batch)
    runtime.alerting.desk.committed()

    class AliceToken:  # the real authentication middleware, through its bearer seam
        def verify(self, token: str):
            return ALICE if token == "test-alice" else None

    @web.middleware
    async def as_alice(request, handler):
        return await handler(request.clone(headers={**request.headers, "Authorization": "Bearer test-alice"}))

    runtime.alerting.bearer_verifiers.append(AliceToken())

    app = runtime.skeleton.app()
    app.middlewares.insert(0, as_alice)
    try:
        async with TestClient(TestServer(app)) as client:
            yield runtime, client
    finally:
        await runtime.stop()


async def test_a_forged_actor_or_forwarded_address_does_not_change_the_audit_row(ward):
    runtime, client = ward
    forged = await client.post("/api/incidents/a1/acknowledge", json={"actor": "mallory"})
    assert forged.status == 400, "a body naming an actor is refused, never recorded"
    response = await client.post("/api/incidents/a1/acknowledge",
                                 headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
    assert response.status == 200
    (row,) = runtime.alerting.audit.export()
    assert (row["subject"], row["name"], row["action"], row["patient_id"], row["address"]) == (
        "local:alice", "Alice Nurse", "acknowledge", "pt-a", "127.0.0.1")


@pytest.mark.parametrize("ward, forwarded_for, address", [
    ({"trusted_proxies": ["10.0.0.0/8"]}, "203.0.113.9", "127.0.0.1"),  # the peer is not a trusted proxy
    ({"trusted_proxies": ["127.0.0.1"]}, "203.0.113.9", "203.0.113.9"),  # it is: the client it names
    ({"trusted_proxies": ["127.0.0.1"]}, "198.51.100.66, 203.0.113.9", "203.0.113.9"),  # the left one is the client's own
    ({"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}, "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # two proxies
    ({"trusted_proxies": ["127.0.0.1"]}, "not-an-address", "127.0.0.1"),
], indirect=["ward"])
async def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(ward, forwarded_for, address, record_attack):
    runtime, client = ward
    response = await client.post("/api/incidents/a1/acknowledge", headers={"X-Forwarded-For": forwarded_for})
    assert response.status == 200
    (row,) = runtime.alerting.audit.export()
    if forwarded_for.startswith("198.51.100.66"):
        record_attack("http", "X-Forwarded-For prefixed by the client behind a trusted proxy", "embedded",
                      row["address"] == address)
    assert row["address"] == address


async def test_a_forwarded_scheme_is_believed_only_from_a_trusted_proxy(tmp_path, record_attack):
    """`X-Forwarded-Proto: https` over plain HTTP makes the session cookie Secure only from a trusted proxy."""
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime

    secure = {}
    for trusted in ([], ["127.0.0.1"]):
        runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path / str(len(trusted)), models_enabled=False,
                                                trusted_proxies=trusted), Registry())
        runtime.alerting.people.accounts.add("jo", Role.NURSE, password="a long passphrase", wards=["w1"])
        try:
            async with TestClient(TestServer(runtime.skeleton.app())) as client:
                response = await client.post("/api/login", json={"username": "jo", "password": "a long passphrase"},
                                             headers={"X-Forwarded-Proto": "https"})
                assert response.status == 200, await response.text()
                secure[bool(trusted)] = "Secure" in response.headers["Set-Cookie"]
        finally:
            await runtime.stop()
    record_attack("http", "X-Forwarded-Proto from a client that is not a proxy", "embedded", not secure[False])
    assert secure == {False: False, True: True}


async def test_a_read_through_a_filter_or_an_alert_id_is_recorded_against_the_patient_shown(ward):
    runtime, client = ward
    await client.get("/api/incidents?patient_id=pt-a")
    await client.get("/api/incidents/a1")  # an alert id standing for its incident
    await client.get("/api/alerts?patient_id=pt-a&limit=1")
    assert [(r["action"], r["patient_id"]) for r in runtime.alerting.audit.export()] == [
        ("read incidents", "pt-a"), ("read incident", "pt-a"), ("read alerts", "pt-a")]


async def test_a_rejected_hostile_request_leaves_no_false_row_and_no_row_is_lost(ward):
    runtime, client = ward
    assert (await client.get("/api/incidents?limit=1e9")).status == 400  # refused before reading: nothing shown
    assert (await client.post("/api/incidents/a1/resolve", data=b"[1]")).status == 400
    assert list(runtime.alerting.audit.export()) == []
    assert (await client.post("/api/incidents/a1/resolve", json={"note": "x"})).status == 200
    assert (await client.post("/api/incidents/a1/acknowledge")).status == 409
    assert [(r["action"], r["outcome"]) for r in runtime.alerting.audit.export()] == [
        ("resolve", "ok"), ("acknowledge", "conflict")]
