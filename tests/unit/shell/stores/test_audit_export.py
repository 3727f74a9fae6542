"""`vigil audit export`: the access audit streamed as JSON lines or CSV, filtered by time and patient."""

from __future__ import annotations

import csv
import io
import json

import pytest

from vigil.cli import main
from vigil.core.identity import Principal, Role
from vigil.shell.stores.access_audit import EXPORT_COLUMNS, AuditTrail
from vigil.shell.stores.sql import SqlStore

T = 1_764_756_000.0  # 2025-12-03T10:00:00Z
ALICE = Principal("local:alice", "Alice, Nurse", Role.NURSE)


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path))
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    for i, patient in enumerate(["pt-a", "pt-b", "pt-a"]):
        trail = AuditTrail(store.engine, clock=lambda i=i: T + 3600 * i)
        trail.write(trail.rows(ALICE, "read incident", [patient], f"in-{i}", "ok", "10.0.0.7", 200))
    store.engine.dispose()
    return tmp_path


def test_jsonl_by_default_with_the_time_in_iso(store_dir, capsys):
    assert main(["audit", "export"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["target"] for r in rows] == ["in-0", "in-1", "in-2"]
    assert rows[0]["when"] == "2025-12-03T10:00:00+00:00" and rows[0]["subject"] == "local:alice"


def test_since_until_and_patient_filter(store_dir, capsys):
    assert main(["audit", "export", "--since", "2025-12-03T11:00:00Z", "--until", "2025-12-03T12:00"]) == 0
    assert [json.loads(line)["target"] for line in capsys.readouterr().out.splitlines()] == ["in-1"]
    assert main(["audit", "export", "--patient", "pt-a"]) == 0
    assert [json.loads(line)["target"] for line in capsys.readouterr().out.splitlines()] == ["in-0", "in-2"]


def test_csv_has_a_header_and_quotes_what_needs_quoting(store_dir, capsys):
    assert main(["audit", "export", "--format", "csv", "--patient", "pt-b"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 and rows[0]["name"] == "Alice, Nurse" and rows[0]["patient_id"] == "pt-b"
    assert list(rows[0])[:3] == ["when", "id", "t"]


def test_a_list_read_is_one_line_per_patient_with_the_same_id_and_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path))
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    trail = AuditTrail(store.engine, clock=lambda: T)
    trail.write(trail.rows(ALICE, "read incidents", ["pt-c", "pt_a", "pt-b"], "", "ok", "10.0.0.7", 200))
    trail.write(trail.rows(ALICE, "read incident", ["pt-xa"], "in-9", "ok", "10.0.0.7", 200))
    store.engine.dispose()
    assert main(["audit", "export"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["patient_id"], r["action"]) for r in rows] == [
        (1, "pt-b", "read incidents"), (1, "pt-c", "read incidents"), (1, "pt_a", "read incidents"),
        (2, "pt-xa", "read incident")]
    assert {r["when"] for r in rows} == {"2025-12-03T10:00:00+00:00"}
    assert main(["audit", "export", "--format", "csv", "--patient", "pt_a"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["patient_id"]) for r in lines] == [("1", "pt_a")]
    assert tuple(lines[0]) == ("when", *EXPORT_COLUMNS) and "patients" not in lines[0]


def test_a_bad_time_is_refused_and_a_store_without_an_audit_says_so(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "export", "--since", "yesterday"])
    assert exit_.value.code == 2 and "ISO 8601" in capsys.readouterr().err
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert main(["audit", "export"]) == 1
    assert "no access audit" in capsys.readouterr().err
