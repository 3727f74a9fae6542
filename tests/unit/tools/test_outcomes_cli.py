"""`vigil outcomes export`: only a nurse or physician who proves their password, only their wards'
patients, and every attempt in the access audit (a refusal too)."""

from __future__ import annotations

import io
import json

import yaml

from vigil.cli import main
from vigil.core.events import Alert
from vigil.core.identity import Role
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.desk.desk import AlertChange
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import WriteBatch

T0 = 1_760_000_000.0
ROSTER = {"patients": [{"patient_id": "pt-a", "ward": "w1"}, {"patient_id": "pt-b", "ward": "w2"}]}


def _labelled_ward(tmp_path) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False),
                              Registry(Roster.model_validate(ROSTER)))
    batch, changes = WriteBatch(), []
    for alert_id, patient in (("a1", "pt-a"), ("b1", "pt-b")):
        alert = Alert(alert_id, patient, "hypoxaemia", "clinical", "high", "SpO2 < 91", {"spo2_pct": 89}, T0 - 60, T0)
        batch.alerts.append(AlertRow.of(alert))
        changes.append(AlertChange("raised", alert, T0))
    runtime.alerting.desk.take(changes, batch)
    runtime.store.write(batch)
    for alert_id, outcome in (("a1", "artefact"), ("b1", "true_deterioration")):
        runtime.alerting.act(alert_id, "resolve", "Dr Who", "checked", outcome)
    accounts = runtime.alerting.people.accounts
    accounts.add("jo", Role.NURSE, wards=["w1"], password="jo's long passphrase")
    accounts.add("admin", Role.WARD_ADMIN, wards=["w1"], password="admin's long passphrase")
    return runtime


def _export(monkeypatch, capsys, user: str, password: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(["outcomes", "export", "--as", user])
    return code, capsys.readouterr().out


async def test_export_is_for_a_nurse_of_the_ward_and_every_attempt_is_audited(tmp_path, monkeypatch, capsys):
    runtime = _labelled_ward(tmp_path)
    roster = tmp_path / "roster.yaml"
    roster.write_text(yaml.safe_dump(ROSTER))
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VIGIL_ROSTER", str(roster))
    try:
        assert _export(monkeypatch, capsys, "admin", "admin's long passphrase") == (2, "")  # a role that reads no incidents
        assert _export(monkeypatch, capsys, "jo", "not jo's passphrase") == (2, "")
        code, out = _export(monkeypatch, capsys, "jo", "jo's long passphrase")
        assert code == 0
        lines = [json.loads(line) for line in out.splitlines()]
        assert [(r["alert_id"], r["patient_id"], r["outcome"], r["note"]) for r in lines] == [("a1", "pt-a", "artefact", "checked")]
        audit = [(r["action"], r["outcome"], r["name"], r["patient_id"], r["address"])
                 for r in runtime.alerting.audit.export() if r["action"] == "export outcomes"]
        assert audit == [("export outcomes", "denied", "admin", None, "cli"),
                         ("export outcomes", "denied", "anonymous", None, "cli"),
                         ("export outcomes", "ok", "jo", "pt-a", "cli")]
    finally:
        await runtime.stop()
