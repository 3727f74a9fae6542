"""`vigil device enrol|revoke|list|export-mosquitto`, in process."""

from __future__ import annotations

import json
import stat

import pytest
import yaml

from vigil.cli import main


@pytest.fixture
def ward(tmp_path, monkeypatch):
    roster = tmp_path / "roster.yaml"
    roster.write_text(yaml.safe_dump({"patients": [{"patient_id": "p1", "devices": [{"device_id": "wr-1"}]},
                                                   {"patient_id": "p2", "devices": [{"device_id": "wr-2"}]}]}))
    monkeypatch.setenv("VIGIL_ROSTER", str(roster))
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    return tmp_path


def test_enrol_list_revoke_export(ward, capsys):
    assert main(["device", "enrol", "wr-1"]) == 0
    enrolled = json.loads(capsys.readouterr().out)
    assert enrolled["username"] == "wr-1" and len(enrolled["password"]) >= 40
    assert main(["device", "enrol", "wr-2"]) == 0
    capsys.readouterr()
    assert main(["device", "enrol", "wr-9"]) == 2  # not in the roster
    assert "not in the roster" in capsys.readouterr().err

    passwd = ward / "passwd"
    passwd.write_text("bench-probe:$7$101$keep$me\nold-device:$7$101$drop$me\n")
    assert main(["device", "revoke", "wr-2"]) == 0
    assert main(["device", "revoke", "wr-2"]) == 1  # nothing active to revoke
    assert main(["device", "export-mosquitto", "--out", str(passwd), "--keep", "bench-probe"]) == 0
    lines = passwd.read_text().splitlines()
    assert lines[0] == "bench-probe:$7$101$keep$me"
    assert [line.split(":")[0] for line in lines] == ["bench-probe", "wr-1"]  # revoked and unknown users gone
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["device", "list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["device_id"], d["patient_id"], d["active"]) for d in listed] == [("wr-1", "p1", True), ("wr-2", "p2", False)]
    assert enrolled["password"] not in passwd.read_text()


def test_export_refuses_to_put_a_service_account_in_the_devices_password_file(ward, capsys):
    """On the device listeners a login's client id is its username: `vigil-ingest` there would log in
    with a service's client id. Service accounts have their own file (deploy/local/lib/mosquitto.sh)."""
    passwd = ward / "passwd"
    passwd.write_text("vigil-ingest:$7$101$old$hash\n")
    assert main(["device", "export-mosquitto", "--out", str(passwd), "--keep", "vigil-ingest"]) == 2
    assert "service accounts go in the service listener's own password file" in capsys.readouterr().err
    assert passwd.read_text() == "vigil-ingest:$7$101$old$hash\n"  # left as it was
    assert main(["device", "export-mosquitto", "--out", str(passwd)]) == 0
    assert "vigil-ingest" not in passwd.read_text()
