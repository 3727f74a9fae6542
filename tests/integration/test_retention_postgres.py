"""The scaled path's retention on the real PostgreSQL (issue 15, "Data at rest"): the same selection as
the embedded store's (the unit module's rows and expectations, run here), the purge the notifier
schedules and `vigil retention run` counting per kind, and the access audit's DELETE trigger:
old rows may go, a recent one is refused by the database itself, UPDATE and TRUNCATE always.
Each test has a schema of its own, dropped afterwards (the shared database is left alone)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import DBAPIError

from vigil.runtimes.shared.sql_purge import SqlPurge
from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import access_audit, outbox, readings, vital_rollups

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location(
    "sqlite_retention_cases", Path(__file__).parents[1] / "unit" / "shell" / "stores" / "test_retention.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
NOW, DAY = cases.NOW, cases.DAY


@pytest.fixture
def schema_url(servers):
    url = servers["VIGIL_DATABASE_URL"]
    schema = "retention_" + uuid.uuid4().hex[:8]
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def store(schema_url):
    """The unit module's rows (incidents open and resolved, old and recent rows of every kind), in PostgreSQL."""
    store = SqlStore(schema_url, audit_keep_days=400)
    cases.fill(store)
    yield store
    store.close()


SAME_AS_SQLITE = [
    "test_readings_and_scores_go_except_those_of_a_patient_with_an_unresolved_incident",
    "test_rollups_have_their_own_cut_off_and_keep_those_of_a_patient_with_an_unresolved_incident",
    "test_notifications_go_once_delivered_or_failed_never_while_waiting_nor_of_an_open_incident",
    "test_explanations_go_except_those_of_an_open_alert_or_an_unresolved_incident",
    "test_dead_letters_and_their_counts",
    "test_audit_rows_past_retention_go_and_the_rest_stay",
]


@pytest.mark.parametrize("case", SAME_AS_SQLITE)
def test_the_same_rows_go_and_stay_as_in_the_embedded_store(store, case):
    getattr(cases, case)(store)


def audit_count(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM access_audit")).scalar()


def test_the_database_refuses_to_delete_audit_rows_younger_than_the_retention(store):
    """The attack through the store itself: a purge asked for too much, a bug, an injected statement."""
    with pytest.raises(DBAPIError, match="append-only"):
        cases.purge_all(store, "audit", NOW, chunk_rows=100)  # the 20-day-old row is refused: all roll back
    for statement in ("DELETE FROM access_audit", "DELETE FROM access_audit WHERE t > 0",
                      f"UPDATE access_audit SET subject = 'someone else' WHERE t < {NOW - 1000 * DAY}",
                      "TRUNCATE access_audit"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert audit_count(store) == 3


def test_a_store_made_before_retention_gets_the_age_aware_trigger(schema_url):
    """PostgreSQL stores made by an earlier version refused every DELETE with one statement trigger:
    the notifier (a retention given) replaces it; a service without one leaves the window alone."""
    store = SqlStore(schema_url)  # no retention given: every DELETE refused
    with store.engine.begin() as conn:
        conn.execute(insert(access_audit), [cases.audit_row(NOW - 3000 * DAY), cases.audit_row(NOW - 20 * DAY)])
        conn.execute(text('DROP TRIGGER "access_audit_delete_retention" ON access_audit'))
        conn.execute(text('CREATE OR REPLACE TRIGGER "access_audit_append_only" BEFORE UPDATE OR DELETE OR TRUNCATE '
                          'ON access_audit FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change()'))
    store.close()
    SqlStore(schema_url).close()  # a tool: installs the row trigger refusing every DELETE (keep 0)
    store = SqlStore(schema_url)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM access_audit WHERE t < {NOW - 2000 * DAY}"))
    store.close()
    store = SqlStore(schema_url, audit_keep_days=400)  # the notifier
    try:
        assert cases.purge_all(store, "audit", NOW - 400 * DAY) == {"access_audit": 1}
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("DELETE FROM access_audit"))
        assert audit_count(store) == 1
    finally:
        store.close()


EXPECTED = {"readings": 6, "rollups": 0, "dead_letters": 3, "notifications": 2, "explanations": 1, "audit": 2}


def test_the_scheduled_purge_counts_what_it_deleted_per_kind(store):
    settings = VigilSettings(retain_audit_days=400, purge_chunk_rows=2)
    metrics = Metrics()
    assert SqlPurge(settings, store.engine, metrics).purge() == EXPECTED
    exposition = metrics.exposition().decode()
    for kind, deleted in EXPECTED.items():
        assert f'vigil_purged_rows_total{{kind="{kind}"}} {float(deleted)}' in exposition
    assert "vigil_dead_letters_purged_total 2.0" in exposition
    assert SqlPurge(settings, store.engine, metrics).purge() == dict.fromkeys(EXPECTED, 0)  # nothing twice
    assert rows(store, readings.c.t).count(cases.RECENT) == 2 and len(rows(store, outbox.c.key)) == 4
    assert len(rows(store, vital_rollups.c.t)) == 8


def test_vigil_retention_run_for_a_timer(store, schema_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(VIGIL_DATABASE_URL=schema_url, VIGIL_RETAIN_AUDIT_DAYS="400", VIGIL_RETAIN_ROLLUPS_DAYS="450")
    done = subprocess.run([sys.executable, "-m", "vigil.cli", "retention", "run"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"purged": {**EXPECTED, "rollups": 3}, "failed": []}


def rows(store: SqlStore, column) -> list:
    with store.engine.connect() as conn:
        return sorted(row[0] for row in conn.execute(select(column)))
