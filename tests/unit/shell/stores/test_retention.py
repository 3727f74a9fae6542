"""The retention purge's selection (issue 15, "Data at rest"): each kind past its days goes, chunk by
chunk; nothing of an unresolved incident, no notification still to deliver, no explanation of an open
alert; and the access audit is deleted only where the database's own trigger allows it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from vigil.shell.stores.retention import KINDS, Purger, Retention
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import (
    access_audit, alerts, dead_letter_counts, dead_letters, explanations, incident_alerts, incidents, outbox, readings,
    scores, vital_rollups,
)

NOW = time.time()  # the audit trigger ages rows by the database's own clock
DAY = 86400.0
OLD, RECENT = NOW - 500 * DAY, NOW - 10 * DAY


def purge_all(store: SqlStore, kind: str, before: float, chunk_rows: int = 2) -> dict[str, int]:
    purger, totals = Purger(store.engine, chunk_rows), {}
    while True:
        deleted = purger.chunk(kind, before)
        for table, rows in deleted.items():
            totals[table] = totals.get(table, 0) + rows
        if not any(deleted.values()):
            return totals


def incident(incident_id: str, patient_id: str, state: str) -> dict:
    return dict(incident_id=incident_id, patient_id=patient_id, category="clinical", severity="high", state=state,
                opened_t=OLD, updated_t=OLD, revision=1, escalation_level=0, doc={})


def alert(alert_id: str, patient_id: str, state: str) -> dict:
    return dict(alert_id=alert_id, patient_id=patient_id, kind="hypoxaemia", category="clinical", severity="high",
                state=state, rule="r", values={}, onset_t=OLD, raised_t=OLD)


def notification(key: str, incident_id: str, status: str, t: float) -> dict:
    return dict(key=key, incident_id=incident_id, patient_id="pt", event="opened", revision=1, recipient_id="r",
                role="nurse", audience="clinician", channel="sms", address="+447700900000", language="en",
                severity="high", critical=False, subject="s", body="b", payload={}, text_source="template",
                status=status, attempts=1, deliver_after=t, next_attempt_t=t, created_t=t)


def explanation(alert_id: str, t: float) -> dict:
    return dict(alert_id=alert_id, language="en", facts_key="k", source="template", patient_text="p",
                clinician_text="c", created_t=t)


def audit_row(t: float) -> dict:
    return dict(t=t, subject="nurse:jo", name="Jo", role="nurse", via="session", patient_id="pt-open",
                action="read vitals", target="pt-open", outcome="ok")


@pytest.fixture
def store(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}", audit_keep_days=400)
    fill(store)
    yield store
    store.close()


def fill(store: SqlStore) -> None:
    """Incidents open and resolved, and old and recent rows of every kind (also run on PostgreSQL:
    tests/integration/test_retention_postgres.py)."""
    with store.engine.begin() as conn:
        conn.execute(insert(incidents), [incident("inc-open", "pt-open", "acknowledged"),
                                         incident("inc-done", "pt-done", "resolved")])
        conn.execute(insert(alerts), [alert("al-open", "pt-done", "open"), alert("al-inc", "pt-open", "cleared"),
                                      alert("al-old", "pt-done", "cleared")])
        conn.execute(insert(incident_alerts), [{"alert_id": "al-inc", "incident_id": "inc-open"},
                                               {"alert_id": "al-old", "incident_id": "inc-done"}])
        for patient in ("pt-open", "pt-done"):
            for i, t in enumerate((OLD, OLD + 1, OLD + 2, RECENT)):
                conn.execute(insert(readings), dict(patient_id=patient, device_id="wr", t=t, seq=i, hr=70.0))
                conn.execute(insert(scores), dict(patient_id=patient, t=t, anomaly=0.1, risk=0.1, model_version="m"))
                conn.execute(insert(vital_rollups), dict(patient_id=patient, t=t, hr_min=70.0, hr_max=70.0, hr_sum=70.0,
                                                         hr_n=1, readings_n=1))
        conn.execute(insert(outbox), [notification("n-sent-old", "inc-done", "sent", OLD),
                                      notification("n-failed-old", "inc-done", "failed", OLD),
                                      notification("n-pending-old", "inc-done", "pending", OLD),
                                      notification("n-held-old", "inc-done", "held", OLD),
                                      notification("n-open-incident", "inc-open", "sent", OLD),
                                      notification("n-sent-recent", "inc-done", "sent", RECENT)])
        conn.execute(insert(explanations), [explanation("al-old", OLD), explanation("al-open", OLD),
                                            explanation("al-inc", OLD), explanation("al-new", RECENT)])
        conn.execute(insert(dead_letters), [dict(received_at=t, topic="x", reason="malformed_json", detail="d", raw=b"[")
                                            for t in (OLD, OLD, RECENT)])
        conn.execute(insert(dead_letter_counts), [dict(device_id="a", reason="r", refused=1, kept=1, first_t=OLD, last_t=OLD),
                                                  dict(device_id="b", reason="r", refused=1, kept=1, first_t=OLD, last_t=RECENT)])
        conn.execute(insert(access_audit), [audit_row(t) for t in (NOW - 3000 * DAY, NOW - 500 * DAY, NOW - 20 * DAY)])


def column(store: SqlStore, col) -> list:
    with store.engine.connect() as conn:
        return sorted(row[0] for row in conn.execute(select(col)))


def test_cutoffs_per_kind_and_zero_keeps_forever():
    retention = Retention({"readings": 400, "dead_letters": 14, "notifications": 0, "explanations": 30, "audit": 2920})
    cut = retention.cutoffs(NOW)
    assert set(cut) == {"readings", "dead_letters", "explanations", "audit"}
    assert cut["dead_letters"] == NOW - 14 * DAY and cut["audit"] == NOW - 2920 * DAY
    assert Retention({}).cutoffs(NOW) == {} and set(KINDS) >= set(cut)


def test_readings_and_scores_go_except_those_of_a_patient_with_an_unresolved_incident(store):
    assert purge_all(store, "readings", NOW - 400 * DAY) == {"readings": 3, "scores": 3}  # in chunks of 2
    assert column(store, readings.c.t).count(RECENT) == 2
    with store.engine.connect() as conn:
        left = conn.execute(text("SELECT patient_id, count(*) FROM readings GROUP BY patient_id")).all()
    assert dict(left) == {"pt-open": 4, "pt-done": 1}


def test_rollups_have_their_own_cut_off_and_keep_those_of_a_patient_with_an_unresolved_incident(store):
    assert purge_all(store, "rollups", NOW - 1095 * DAY) == {"vital_rollups": 0}  # kept longer than readings
    assert purge_all(store, "rollups", NOW - 400 * DAY) == {"vital_rollups": 3}
    assert column(store, vital_rollups.c.patient_id).count("pt-open") == 4


def test_notifications_go_once_delivered_or_failed_never_while_waiting_nor_of_an_open_incident(store):
    assert purge_all(store, "notifications", NOW - 400 * DAY) == {"outbox": 2}
    assert column(store, outbox.c.key) == ["n-held-old", "n-open-incident", "n-pending-old", "n-sent-recent"]


def test_explanations_go_except_those_of_an_open_alert_or_an_unresolved_incident(store):
    assert purge_all(store, "explanations", NOW - 400 * DAY) == {"explanations": 1}
    assert column(store, explanations.c.alert_id) == ["al-inc", "al-new", "al-open"]


def test_dead_letters_and_their_counts(store):
    assert purge_all(store, "dead_letters", NOW - 14 * DAY) == {"dead_letters": 2, "dead_letter_counts": 1}
    assert column(store, dead_letter_counts.c.device_id) == ["b"]


def test_audit_rows_past_retention_go_and_the_rest_stay(store):
    assert purge_all(store, "audit", NOW - 400 * DAY) == {"access_audit": 2}
    assert column(store, access_audit.c.t) == [pytest.approx(NOW - 20 * DAY)]


def test_the_database_refuses_to_delete_audit_rows_younger_than_the_retention(store):
    """An attack through the store itself: a purge asked for too much, a bug, an injected DELETE."""
    with pytest.raises(IntegrityError, match="append-only"):
        purge_all(store, "audit", NOW, chunk_rows=100)  # every row: the 20-day-old one is refused, all roll back
    assert len(column(store, access_audit.c.t)) == 3
    with pytest.raises(IntegrityError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM access_audit"))
    with pytest.raises(IntegrityError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE access_audit SET subject = 'someone else' WHERE t < :t"), {"t": NOW - 1000 * DAY})
    assert len(column(store, access_audit.c.t)) == 3


def test_the_trigger_never_lets_a_row_younger_than_a_year_go_whatever_the_retention(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'v.sqlite'}", audit_keep_days=1)  # below the floor: a year still holds
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(access_audit), [audit_row(NOW - 300 * DAY)])
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(text("DELETE FROM access_audit"))
    finally:
        store.close()


def test_audit_kept_forever_refuses_every_delete_and_a_tool_leaves_the_window_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'v.sqlite'}"
    SqlStore(url, audit_keep_days=0).close()
    store = SqlStore(url)  # a tool (no retention given): the trigger stays as the runtime set it
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(access_audit), [audit_row(NOW - 5000 * DAY)])
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(text("DELETE FROM access_audit"))
    finally:
        store.close()
    SqlStore(url, audit_keep_days=400).close()  # the runtime with a retention: now the old row may go
    store = SqlStore(url)
    try:
        assert purge_all(store, "audit", NOW - 400 * DAY) == {"access_audit": 1}
    finally:
        store.close()
