"""Attacks on the access audit: rewriting or erasing who read what.

The table is append-only by the database's own triggers, so even a caller with SQL access through
Vigil's own connection cannot UPDATE, DELETE (or, on PostgreSQL, TRUNCATE) a row. Runs on SQLite
always and on PostgreSQL with the real servers (VIGIL_INTEGRATION=1). HTTP-side attacks on the
audit (reads leave rows, refused requests leave rows) follow below.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DatabaseError

from vigil.core.identity import Principal, Role
from vigil.shell.stores.access_audit import AuditTrail
from vigil.shell.stores.sql import SqlStore

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


async def test_postgresql_also_refuses_truncate_and_a_second_start_keeps_one_trigger(database):
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
            triggers = conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('access_audit') "
                                         "AND NOT tgisinternal")).scalar()
        assert triggers == 1 and len(list(AuditTrail(store.engine).export())) == 1
    finally:
        store.engine.dispose()
        again.engine.dispose()
