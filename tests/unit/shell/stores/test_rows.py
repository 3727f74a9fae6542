"""The typed rows of a write batch: named as their columns, stored as they were, one mapping."""

from __future__ import annotations

from sqlalchemy import select

from vigil.core.events import Alert
from vigil.core.incident import Incident, Member
from vigil.shell.stores import tables
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.influx import line_for, score_line
from vigil.shell.stores.rows import (
    AlertEventRow,
    AlertRow,
    AuditRow,
    DeadLetterCountRow,
    DeadLetterRow,
    DeviceStatusRow,
    ExplanationRow,
    IncidentAlertRow,
    IncidentRow,
    InboxRow,
    OutboxRow,
    ReadingRow,
    ScoreRow,
)
from vigil.shell.stores.sql import SqlStore, WriteBatch, outbox_columns

T = 1_760_000_000.0
ROW_TABLES = {
    ReadingRow: tables.readings, AlertRow: tables.alerts, AlertEventRow: tables.alert_events,
    DeviceStatusRow: tables.device_status, ScoreRow: tables.scores, IncidentRow: tables.incidents,
    IncidentAlertRow: tables.incident_alerts, AuditRow: tables.incident_audit, InboxRow: tables.desk_inbox,
    ExplanationRow: tables.explanations, DeadLetterCountRow: tables.dead_letter_counts,
}


def test_every_row_is_named_and_ordered_as_its_table():
    for row, table in ROW_TABLES.items():
        assert row._fields == tuple(c.name for c in table.columns), row.__name__
    assert DeadLetterRow._fields == tuple(c.name for c in tables.dead_letters.columns if c.name != "id")  # numbered by the store
    # A new outbox row's delivery state is the store's: together they are every column.
    assert set(outbox_columns([outbox_row()])[0]) == {c.name for c in tables.outbox.columns}
    assert set(WriteBatch.__dataclass_fields__) == {
        "readings", "alerts", "alert_events", "dead_letters", "dead_letter_counts", "device_status", "scores", "incidents", "incident_alerts",
        "incident_audit", "desk_inbox", "outbox"}


def alert(**changes) -> Alert:
    fields = dict(alert_id="al-1", patient_id="p-1", kind="hypoxaemia", category="clinical", severity="high",
                  rule="SpO2 <= 91 %", values={"spo2_pct": 89.0}, onset_t=T - 60, raised_t=T,
                  news2={"score": 7, "band": "high", "parameters": {"spo2": 3}, "missing": []},
                  baselines={"spo2": 97.0}, trends={"spo2": -2.0})
    return Alert(**{**fields, **changes})


def outbox_row(**changes) -> OutboxRow:
    fields = dict(key="nt-1", incident_id="in-1", patient_id="p-1", event="opened", revision=1, recipient_id="console",
                  role="console", audience="clinician", channel="app", address="console", language="en",
                  severity="high", critical=False, subject="s", body="b", payload={"event": "opened"},
                  text_source="template", deliver_after=T + 5, created_t=T)
    return OutboxRow(**{**fields, **changes})


def test_a_new_outbox_row_starts_pending_and_due_when_it_may_be_sent():
    (values,) = outbox_columns([outbox_row()])
    assert values["status"] == "pending" and values["attempts"] == 0 and values["next_attempt_t"] == T + 5
    assert values["lease_until"] is values["sent_t"] is values["provider_id"] is values["last_error"] is None


def test_an_alert_row_is_the_alert_as_it_stood():
    raised = alert()
    row = AlertRow.of(raised, "Vigil: rest", "SpO2 89 %")
    raised.values["spo2_pct"], raised.cleared_t = 85.0, T + 60  # the core moves on
    assert row.state == "open" and row.values == {"spo2_pct": 89.0} and row.cleared_t is None
    assert (row.patient_message, row.clinician_summary) == ("Vigil: rest", "SpO2 89 %")
    assert AlertRow.of(raised).state == "cleared" and AlertRow.of(raised).patient_message is None


def test_every_row_lands_in_its_table_as_it_was_built(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'rows.sqlite'}")
    incident = Incident("in-1", "p-1", "clinical", T, "high", members={"al-1": Member("hypoxaemia", "high")},
                        revision=1, updated_t=T)
    batch = WriteBatch(
        readings=[ReadingRow("p-1", "d-1", T, 7, hr=88.0, spo2=91.0, steps=3, on_oxygen=False, acvpu="A",
                             flags="motion", news2=5, news2_partial=True)],
        alerts=[AlertRow.of(alert(), "p", "c")],
        alert_events=[AlertEventRow("al-1", "raised", T, "vigil", {"severity": "high"})],
        dead_letters=[DeadLetterRow(T, "vigil/v1/devices/d-1/vitals", "d-1", None, "schema_invalid", "bad", 2, b"\x00{",
                                    10, "ab" * 32)],
        device_status=[DeviceStatusRow("d-1", "online", T, 55.0)],
        scores=[ScoreRow("p-1", T, 0.4, 0.2, "m-1")],
        incidents=[IncidentRow.of(incident)],
        incident_alerts=[IncidentAlertRow("al-1", "in-1")],
        incident_audit=[AuditRow("in-1", 1, "opened", T, "vigil", "al-1", {"severity": "high", "state": "open"})],
        desk_inbox=[InboxRow("al-1", "raised", T)],
        outbox=[outbox_row()],
    )
    store.write(batch)
    stored = {}
    with store.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            stored[table.name] = [dict(r._mapping) for r in conn.execute(select(table))]
    for field, table in (("readings", "readings"), ("alerts", "alerts"), ("alert_events", "alert_events"),
                         ("device_status", "device_status"), ("scores", "scores"), ("incidents", "incidents"),
                         ("incident_alerts", "incident_alerts"), ("incident_audit", "incident_audit"),
                         ("desk_inbox", "desk_inbox")):
        assert stored[table] == [row._asdict() for row in getattr(batch, field)], field
    assert stored["dead_letters"] == [{"id": 1, **batch.dead_letters[0]._asdict()}]
    assert stored["outbox"] == outbox_columns(batch.outbox)
    assert Incident.from_dict(stored["incidents"][0]["doc"]) == incident
    # The desk gets its alerts back as the core's alerts, after a restart.
    assert DeskStore(store.engine).alerts_by_id(["al-1", "al-x"]) == {"al-1": alert()}
    store.close()


def test_influx_points_of_typed_rows():
    row = ReadingRow("p 1", "d,1", T + 0.5, 7, hr=88.0, spo2=91, steps=3, battery=50.0, flags='a"b', news2=5,
                     news2_partial=False)
    assert line_for(row) == ('vitals,patient_id=p\\ 1,device_id=d\\,1 hr=88.0,spo2=91.0,battery=50.0,seq=7i,steps=3i,'
                             'news2=5i,news2_partial=false,flags="a\\"b" 1760000000500000000')
    assert line_for(ReadingRow("p", "d", T, 1)) == "vitals,patient_id=p,device_id=d seq=1i 1760000000000000000"
    assert score_line(ScoreRow("p", T, 0.5, 0.25, "m 1")) == (
        "scores,patient_id=p,model_version=m\\ 1 anomaly=0.5,risk=0.25 1760000000000000000")
