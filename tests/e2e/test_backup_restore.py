"""Issue 15: back up a running `vigil run` while a device keeps publishing, destroy its data
directory, restore, start again, and find everything again.

What is checked, row for row, against a snapshot of the live store taken just before the backup
began: every alert, alert event, incident, incident link, incident audit row and access-audit row
(the API read), exactly; every reading stored by then, exactly; and every sample whose message
was acknowledged (PUBACK) before the backup began. "Acknowledged" is paho's on_publish at QoS 1;
the embedded broker sends PUBACK only once the batch is stored (tests/e2e/test_crash_embedded.py).

The guards, each tried here: `vigil restore` refuses while Vigil runs on the store (its
`.in-use` lock) and leaves it untouched; the backup file and its manifest are owner-only.
(A backup failing its SHA-256, integrity_check or manifest counts: tests/unit/shell/stores/test_backup.py.)
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from test_crash_embedded import VigilProcess
from test_run import get, login

pytestmark = pytest.mark.slow

ROSTER = {"version": 1, "patients": [
    {"patient_id": "pt-a", "language": "en", "devices": [{"device_id": "wr-a"}],
     "care_team": [{"name": "Dr B", "role": "physician", "email": "b@example.org"}]},
    {"patient_id": "pt-b", "language": "en", "devices": [{"device_id": "wr-b"}]},
]}
COMPARED = ("alerts", "alert_events", "incidents", "incident_alerts", "incident_audit", "access_audit")


def vitals(device: str, start: datetime, seq0: int, count: int, spo2: float, step_s: float) -> str:
    samples = [{"ts": (start + timedelta(seconds=i * step_s)).isoformat(), "seq": seq0 + i, "hr_bpm": 72.0,
                "spo2_pct": spo2, "rr_per_min": 16.0, "temp_c": 36.8, "accel_g": 0.01, "battery_pct": 80}
               for i in range(count)]
    return json.dumps({"v": 1, "device_id": device, "samples": samples})


def table(db: Path, name: str) -> set[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return set(conn.execute(f'SELECT * FROM "{name}"'))
    finally:
        conn.close()


def read_incidents_audited(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM access_audit WHERE action = 'read incidents'").fetchone()[0] > 0
    finally:
        conn.close()


def vigil_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vigil.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def wait_for(predicate, what: str, timeout: float = 30):
    deadline = time.time() + timeout
    while not (value := predicate()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


class Wearable:
    """wr-b, calm, publishing at QoS 1 in its own thread until stopped; 5 samples a message, a
    second apart, ending before now. Which sequence numbers were acknowledged, and when."""

    def __init__(self, port: int) -> None:
        self.start = datetime.now(timezone.utc) - timedelta(seconds=3600)
        self.seq_of: dict[int, int] = {}
        self.acked: list[int] = []  # mids, appended on PUBACK (paho's thread)
        self.stopped = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-b")
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.append(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._publish, daemon=True)
        self.thread.start()

    def _publish(self) -> None:
        for n in range(700):  # 3,500 s of samples at about 50 messages a second
            if self.stopped.is_set():
                return
            seq0 = 1 + n * 5
            info = self.client.publish("vigil/v1/devices/wr-b/vitals",
                                       vitals("wr-b", self.start + timedelta(seconds=n * 5), seq0, 5, 97.0, 1.0), qos=1)
            self.seq_of[info.mid] = seq0
            time.sleep(0.02)

    def acknowledged_samples(self) -> set[tuple[str, int]]:
        return {("wr-b", self.seq_of[mid] + i) for mid in list(self.acked) if mid in self.seq_of for i in range(5)}

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        time.sleep(0.2)
        self.client.disconnect()
        self.client.loop_stop()


def raise_an_alert(port: int) -> set[tuple[str, int]]:
    """wr-a: ten minutes calm, then SpO2 85 %: an alert and an incident. Its samples, all acknowledged."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-a")
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = datetime.now(timezone.utc) - timedelta(seconds=1200)
    for n in range(20):
        spo2 = 97.0 if n < 10 else 85.0
        payload = vitals("wr-a", start + timedelta(seconds=n * 60), 1 + n * 6, 6, spo2, 10.0)
        client.publish("vigil/v1/devices/wr-a/vitals", payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    return {("wr-a", seq) for seq in range(1, 121)}


def test_backup_while_ingesting_then_destroy_restore_finds_everything(tmp_path):
    (tmp_path / "roster.yaml").write_text(json.dumps(ROSTER))
    vigil = VigilProcess(tmp_path)
    env, data = vigil.env, tmp_path / "data"
    db, backup = data / "vigil.sqlite", tmp_path / "backups" / "vigil.backup.gz"
    backup.parent.mkdir()
    added = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "user", "add", "nurse", "--role", "nurse", "--ward", "ward",
         "--password-stdin"], env=env, input="a long passphrase\n", text=True, capture_output=True, timeout=60)
    assert added.returncode == 0, added.stderr
    vigil.start()
    base = f"http://127.0.0.1:{vigil.http_port}"
    try:
        acknowledged = raise_an_alert(vigil.mqtt_port)
        wait_for(lambda: table(db, "incidents"), "the incident")
        session = login(base, "nurse", "a long passphrase")
        assert [row["patient_id"] for row in get(f"{base}/api/incidents", session)] == ["pt-a"]
        wait_for(lambda: read_incidents_audited(db), "the API read's audit row")
        wearable = Wearable(vigil.mqtt_port)
        wait_for(lambda: len(wearable.acked) >= 50, "wr-b's first acknowledgements")

        # The moment the backup begins: what was acknowledged, and the store as it stands.
        acknowledged |= wearable.acknowledged_samples()
        before = {name: table(db, name) for name in (*COMPARED, "readings")}
        acked_before = len(wearable.acked)
        made = vigil_cli(env, "backup", "--out", str(backup), "--compress", "--pages", "8")
        acked_during = len(wearable.acked) - acked_before
        assert made.returncode == 0, made.stderr

        refused = vigil_cli(env, "restore", "--from", str(backup))  # the guard: Vigil holds the store
        assert refused.returncode == 1 and "in use" in refused.stderr, refused.stderr
        assert table(db, "alerts") == before["alerts"], "a refused restore changes nothing"
        wait_for(lambda: len(wearable.acked) > acked_before + acked_during, "wr-b still acknowledged after the backup")
        wearable.stop()
        after = table(db, "readings")
    finally:
        vigil.stop()
    assert acked_during > 0, "the device was acknowledged while the backup ran"
    for path in (backup, Path(f"{backup}.manifest.json")):
        assert path.stat().st_mode & 0o777 == 0o600, path
    manifest = json.loads(Path(f"{backup}.manifest.json").read_text())

    shutil.rmtree(data)  # the disaster
    restored = vigil_cli(env, "restore", "--from", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    for name in COMPARED:
        assert before[name], f"the test made no {name} rows"
        assert table(db, name) == before[name], f"{name}: restored row for row"
    readings = table(db, "readings")
    assert before["readings"] <= readings <= after, "every stored reading back, as it was; nothing invented"
    assert len(readings) == manifest["counts"]["readings"]

    vigil.start()  # Vigil runs again on the restored store
    try:
        session = login(base, "nurse", "a long passphrase")
        assert [row["patient_id"] for row in get(f"{base}/api/incidents", session)] == ["pt-a"]
        stored = {(row[1], row[3]) for row in table(db, "readings")}
        assert acknowledged - stored == set(), "every sample acknowledged before the backup began"
        assert len(acknowledged) > 120 + 200
        for name in COMPARED:
            assert before[name] <= table(db, name), f"{name}: found again after the restart"
    finally:
        vigil.stop()
