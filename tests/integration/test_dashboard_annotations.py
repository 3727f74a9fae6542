"""The patient dashboard's alert and ward-response annotations, run on the real PostgreSQL on
alerts and incidents written by the store itself, with Grafana's macros and `sqlstring`
variable format substituted as Grafana does."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text

from vigil.shell.stores.rows import AlertRow, AuditRow, IncidentRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.tools.dashboards.annotations import ALERTS_SQL, RESPONSES_SQL, annotation_queries
from vigil.tools.dashboards.definitions import patient_dashboard

pytestmark = pytest.mark.integration

T = 1_760_000_000.0


def grafana_interpolate_sql(sql: str, *, patient: str, start: float, stop: float) -> str:
    """What Grafana's PostgreSQL data source sends: `${patient:sqlstring}` quoted with `'` doubled,
    `$__unixEpochFrom()` / `$__unixEpochTo()` as whole epoch seconds."""
    return (sql.replace("${patient:sqlstring}", "'" + patient.replace("'", "''") + "'")
            .replace("$__unixEpochFrom()", str(int(start))).replace("$__unixEpochTo()", str(int(stop))))


@pytest.fixture
def ward_book(servers):
    """pt-a: a high NEWS2 alert raised and cleared, acknowledged then resolved; a second alert
    still open; an alert long before the time range. pt-b: its own alert and acknowledgement."""
    base = servers.get("VIGIL_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        pytest.skip("PostgreSQL not configured")
    schema = "g" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    store = SqlStore(f"{base}?options=-csearch_path%3D{schema}")

    def alert(alert_id: str, patient: str, raised: float, cleared: float | None, severity: str = "high") -> AlertRow:
        return AlertRow(alert_id, patient, "news2", "clinical", severity, "cleared" if cleared else "open",
                        "NEWS2 >= 7", {"news2": 7}, None, [], None, raised - 30, raised, cleared, {}, {}, None, None)

    def incident(incident_id: str, patient: str, resolution: str | None) -> IncidentRow:
        return IncidentRow(incident_id, patient, "clinical", "high", "resolved" if resolution else "acknowledged",
                           T + 100, T + 500, 3, 0, T + 200, "nurse.li", T + 500 if resolution else None,
                           "dr.chen" if resolution else None, resolution, {})

    store.write(WriteBatch(
        alerts=[alert("a1", "pt-a", T + 100, T + 400), alert("a2", "pt-a", T + 900, None, "medium"),
                alert("a0", "pt-a", T - 10_000, T - 9_000), alert("b1", "pt-b", T + 150, None)],
        incidents=[incident("i1", "pt-a", "true deterioration"), incident("i2", "pt-b", None)],
        incident_audit=[AuditRow("i1", 1, "opened", T + 100, "vigil", "a1", {}),
                        AuditRow("i1", 2, "acknowledged", T + 200, "nurse.li", None, {}),
                        AuditRow("i1", 3, "resolved", T + 500, "dr.chen", None, {}),
                        AuditRow("i2", 1, "opened", T + 150, "vigil", "b1", {}),
                        AuditRow("i2", 2, "acknowledged", T + 300, "nurse.wu", None, {})]))
    yield admin, schema
    store.close()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def run(book, sql: str, patient: str, start: float = T, stop: float = T + 1000) -> list[dict]:
    admin, schema = book
    with admin.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL search_path TO {schema}")
        result = conn.exec_driver_sql(grafana_interpolate_sql(sql, patient=patient, start=start, stop=stop))
        return [dict(row._mapping) for row in result]


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def test_the_patient_dashboard_annotates_alerts_and_responses(ward_book):
    queries = dict(annotation_queries(patient_dashboard()))
    assert queries == {"Alerts": ALERTS_SQL, "Acknowledged / escalated / resolved": RESPONSES_SQL}
    for name, sql in queries.items():
        rows = run(ward_book, sql, "pt-a")
        assert rows and all({"time", "text", "tags"} <= set(r) for r in rows), name


def test_alerts_are_regions_from_raised_to_cleared(ward_book):
    rows = run(ward_book, ALERTS_SQL, "pt-a")
    assert [(r["time"], r["timeend"]) for r in rows] == [(at(T + 100), at(T + 400)), (at(T + 900), at(T + 900))]
    assert rows[0]["text"] == "HIGH alert: news2 (NEWS2 >= 7), cleared"
    assert rows[1]["text"].endswith("still open") and rows[1]["tags"] == "alert,medium,clinical"
    # an alert still open when the range starts, raised before it, is shown
    assert [r["time"] for r in run(ward_book, ALERTS_SQL, "pt-a", start=T + 300, stop=T + 1000)] == [at(T + 100), at(T + 900)]


def test_acknowledgements_and_resolutions_say_who_and_the_outcome(ward_book):
    rows = run(ward_book, RESPONSES_SQL, "pt-a")
    assert [(r["time"], r["tags"]) for r in rows] == [(at(T + 200), "acknowledged,high"), (at(T + 500), "resolved,high")]
    assert rows[0]["text"] == "Acknowledged by nurse.li (high incident i1)"
    assert rows[1]["text"] == "Resolved by dr.chen (high incident i1): true deterioration"
    assert [r["text"] for r in run(ward_book, RESPONSES_SQL, "pt-b")] == ["Acknowledged by nurse.wu (high incident i2)"]


def test_a_crafted_patient_variable_stays_a_string(ward_book):
    for sql in (ALERTS_SQL, RESPONSES_SQL):
        assert run(ward_book, sql, "pt-a' OR '1'='1") == []
        assert run(ward_book, sql, "x'; DROP TABLE alerts; --") == []
    assert len(run(ward_book, ALERTS_SQL, "pt-a")) == 2  # the table is still there
