"""The access audit's store: one row per access naming every patient shown, the export that
expands it to one line per patient, the anonymous caller, the export's filters and pages, and the
triggers that keep the table append-only (SQLite here; PostgreSQL in tests/attacks/test_audit_attacks.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DatabaseError

from vigil.core.identity import Principal, Role
from vigil.shell.stores.access_audit import AuditTrail, outcome_of
from vigil.shell.stores.migrate import append_only, upgrade
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import access_audit, metadata

NURSE = Principal("local:alice", "Alice Nurse", Role.NURSE, wards=frozenset({"w1"}))


@pytest.fixture
def trail(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    ticks = iter(range(1000, 100000))
    yield AuditTrail(store.engine, clock=lambda: float(next(ticks)))
    store.engine.dispose()


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(access_audit)).scalar_one()


def stored(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(access_audit).order_by(access_audit.c.id))]


async def test_one_access_to_many_patients_is_one_row_exported_as_a_line_each_with_who_what_where(trail):
    written = await trail.record(NURSE, "read incidents", ["pt-b", "pt-a", "pt-b"], "", "ok", "10.0.0.7", 200)
    assert written == 1
    (row,) = stored(trail.engine)
    assert (row["patient_id"], row["patients"]) == (None, " pt-a pt-b ")
    lines = list(trail.export())
    assert [r["patient_id"] for r in lines] == ["pt-a", "pt-b"]
    assert {(r["id"], r["t"]) for r in lines} == {(row["id"], row["t"])} and "patients" not in lines[0]
    assert {(r["subject"], r["name"], r["role"], r["via"], r["action"], r["outcome"], r["status"], r["address"])
            for r in lines} == {("local:alice", "Alice Nurse", "nurse", "session", "read incidents", "ok", 200, "10.0.0.7")}


async def test_one_patient_fills_both_columns(trail):
    await trail.record(NURSE, "read incident", ["pt-a"], "in-1")
    (row,) = stored(trail.engine)
    assert (row["patient_id"], row["patients"]) == ("pt-a", " pt-a ")
    assert [r["patient_id"] for r in trail.export(patient_id="pt-a")] == ["pt-a"]


async def test_a_list_read_of_many_patients_is_one_row_found_by_each_patients_export(trail):
    shown = [f"pt-{i}" for i in range(50)] + ["pt_x", "pt%y"]
    await trail.record(NURSE, "read incidents", shown + [None], "", "ok", "10.0.0.7", 200)
    await trail.record(NURSE, "read incident", ["pt-10"], "in-10")
    await trail.record(NURSE, "read incident", ["pt-ax"], "in-ax")  # `pt_x` as a LIKE pattern would match it
    await trail.record(NURSE, "read incident", ["pt-Zy"], "in-zy")  # ... and `pt%y` this one
    assert len(stored(trail.engine)) == 4
    (listed,) = [r for r in stored(trail.engine) if r["action"] == "read incidents"]
    for patient in shown:
        lines = list(trail.export(patient_id=patient))
        assert [r["patient_id"] for r in lines][:1] == [patient], patient
        assert lines[0]["id"] == listed["id"]
        assert all(r["patient_id"] == patient for r in lines), patient
    assert [r["target"] for r in trail.export(patient_id="pt-1")] == [""]  # not pt-10's read
    assert [r["target"] for r in trail.export(patient_id="pt-10")] == ["", "in-10"]
    assert [r["target"] for r in trail.export(patient_id="pt_x")] == [""]
    assert [r["target"] for r in trail.export(patient_id="pt%y")] == [""]
    assert [r["target"] for r in trail.export(patient_id="pt-ax")] == ["in-ax"]
    assert list(trail.export(patient_id="pt_")) == [] and list(trail.export(patient_id="%")) == []
    assert list(trail.export(patient_id="pt-1 pt-10")) == []  # two listed ids are not one id
    assert len(list(trail.export())) == len(shown) + 3


async def test_an_id_that_cannot_be_listed_gets_a_row_of_its_own(trail):
    await trail.record(NURSE, "read incidents", ["pt-a", "pt b", ""], "")
    assert sorted((r["patient_id"], r["patients"]) for r in stored(trail.engine)) == [
        ("", None), ("pt b", None), ("pt-a", " pt-a ")]
    assert [r["patient_id"] for r in trail.export(patient_id="pt b")] == ["pt b"]
    assert [r["patient_id"] for r in trail.export(patient_id="pt")] == []


def test_rows_written_before_the_patients_column_are_still_exported_and_found(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE access_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, t FLOAT NOT NULL, "
                          "subject VARCHAR(160) NOT NULL, name VARCHAR(128) NOT NULL, role VARCHAR(16) NOT NULL, "
                          "via VARCHAR(16) NOT NULL, patient_id VARCHAR(64), action VARCHAR(32) NOT NULL, "
                          "target VARCHAR(256) NOT NULL, outcome VARCHAR(16) NOT NULL, status INTEGER, "
                          "address VARCHAR(64))"))
        conn.execute(text("INSERT INTO access_audit (t, subject, name, role, via, patient_id, action, target, outcome) "
                          "VALUES (1, 'local:alice', 'Alice', 'nurse', 'session', 'pt-a', 'read alerts', '', 'ok')"))
    assert "ALTER TABLE access_audit ADD COLUMN patients TEXT" in upgrade(engine, metadata)
    trail = AuditTrail(engine, clock=lambda: 2.0)
    trail.write(trail.rows(NURSE, "read incidents", ["pt-a", "pt-b"]))
    assert [(r["action"], r["patient_id"]) for r in trail.export(patient_id="pt-a")] == [
        ("read alerts", "pt-a"), ("read incidents", "pt-a")]
    engine.dispose()


async def test_without_a_principal_the_row_says_anonymous_and_no_patient_is_one_row(trail):
    await trail.record(None, "acknowledge", [], "in-1", "denied", None, 403)
    (row,) = trail.export()
    assert (row["subject"], row["role"], row["patient_id"], row["target"]) == ("anonymous", "none", None, "in-1")


async def test_overlong_values_are_clipped_not_refused(trail):
    await trail.record(Principal("x" * 500, "n" * 500, Role.SERVICE, via="bearer"), "a" * 99, ["p" * 99], "t" * 999)
    (row,) = trail.export()
    assert len(row["subject"]) == 160 and len(row["action"]) == 32 and len(row["target"]) == 256


async def test_export_filters_by_time_and_patient_and_pages_through_everything(trail):
    for i in range(25):
        await trail.record(NURSE, "read incident", [f"pt-{i % 3}"], f"in-{i}")
    everything = list(trail.export(page=4))
    assert [r["target"] for r in everything] == [f"in-{i}" for i in range(25)]
    assert [r["target"] for r in trail.export(patient_id="pt-1", page=2)] == [f"in-{i}" for i in range(1, 25, 3)]
    t0 = everything[5]["t"]
    assert [r["target"] for r in trail.export(since=t0, until=t0 + 3)] == ["in-5", "in-6", "in-7"]


@pytest.mark.parametrize("statement", ["UPDATE access_audit SET subject = 'someone else'", "DELETE FROM access_audit"])
async def test_the_database_refuses_to_change_or_delete_a_row(trail, statement):
    await trail.record(NURSE, "read alerts", ["pt-a"])
    with pytest.raises(DatabaseError, match="append-only"):
        with trail.engine.begin() as conn:
            conn.execute(text(statement))
    assert [r["subject"] for r in trail.export()] == ["local:alice"]


def test_a_store_made_before_the_triggers_gains_them_and_installing_twice_is_a_no_op(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    metadata.create_all(engine)  # the table, as an earlier start left it, without triggers
    assert sorted(upgrade(engine, metadata)) == ["access_audit_no_delete", "access_audit_no_update"]
    assert append_only(engine, metadata) == []


@pytest.mark.parametrize(("status", "outcome"), [(200, "ok"), (401, "denied"), (403, "denied"), (404, "not_found"),
                                                 (409, "conflict"), (400, "invalid"), (413, "invalid"), (503, "error")])
def test_outcome_in_words(status, outcome):
    assert outcome_of(status) == outcome
