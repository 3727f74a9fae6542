"""`vigil run` as an operator starts it: roster YAML, VIGIL_* settings, real MQTT clients."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from vigil.tools.ports import free_port

pytestmark = pytest.mark.slow

ROSTER = """
version: 1
patients:
  - patient_id: pt-a
    language: en
    devices: [{device_id: wr-a}]
    clinical: {spo2_scale: 2, usual_ranges: {hr: {low: 45, high: 80}}}
    care_team: [{name: Dr B, role: physician, email: b@example.org}]
"""


def get(url: str, headers: dict[str, str] | None = None):
    return json.loads(urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2).read())


def login(base: str, username: str, password: str) -> dict[str, str]:
    """Log in as the console does; the headers that carry the session (cookie) from then on."""
    request = urllib.request.Request(f"{base}/api/login", data=json.dumps({"username": username, "password": password})
                                     .encode(), headers={"Content-Type": "application/json"})
    response = urllib.request.urlopen(request, timeout=5)
    return {"Cookie": response.headers["Set-Cookie"].split(";")[0]}


def enrol(env: dict[str, str], device_id: str) -> str:
    """`vigil device enrol`: the password it prints once."""
    out = subprocess.run([sys.executable, "-m", "vigil.cli", "device", "enrol", device_id], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["password"]


def test_run_with_roster_accepts_enrolled_and_dead_letters_strangers(tmp_path):
    # wr-z was enrolled (it has credentials) and then taken off the roster: a stranger to the ward now.
    (tmp_path / "roster.yaml").write_text(ROSTER + "  - patient_id: pt-z\n    devices: [{device_id: wr-z}]\n")
    mqtt_port, http_port = free_port(), free_port()
    env = dict(os.environ, VIGIL_MQTT_PORT=str(mqtt_port), VIGIL_HTTP_PORT=str(http_port),
               VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_ROSTER=str(tmp_path / "roster.yaml"))
    # The quick start's first admin: `vigil user add` before `vigil run`, password from stdin.
    subprocess.run([sys.executable, "-m", "vigil.cli", "user", "add", "admin", "--role", "ward_admin", "--ward", "ward",
                    "--password-stdin"], env=env, input="a long passphrase\n", text=True, check=True, capture_output=True)
    passwords = {device: enrol(env, device) for device in ("wr-a", "wr-z")}
    (tmp_path / "roster.yaml").write_text(ROSTER)
    proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                health = get(f"http://127.0.0.1:{http_port}/healthz")
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health["status"] == "ok"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device-a")
        client.username_pw_set("wr-a", passwords["wr-a"])
        client.connect("127.0.0.1", mqtt_port)
        client.loop_start()
        stranger_device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device-z")
        stranger_device.username_pw_set("wr-z", passwords["wr-z"])
        stranger_device.connect("127.0.0.1", mqtt_port)
        stranger_device.loop_start()
        now = datetime.now(timezone.utc)
        samples = [{"ts": (now - timedelta(seconds=60 - i)).isoformat(), "seq": i, "hr_bpm": 70.0 + i % 3,
                    "spo2_pct": 90.0, "rr_per_min": 16.0} for i in range(1, 11)]
        good = json.dumps({"v": 1, "device_id": "wr-a", "samples": samples})
        stranger = json.dumps({"v": 1, "device_id": "wr-z", "samples": samples[:1]})
        client.publish("vigil/v1/devices/wr-a/vitals", good, qos=1).wait_for_publish(5)
        stranger_device.publish("vigil/v1/devices/wr-z/vitals", stranger, qos=1).wait_for_publish(5)
        for each in (client, stranger_device):
            each.disconnect()
            each.loop_stop()
        deadline = time.time() + 15
        while time.time() < deadline:
            health = get(f"http://127.0.0.1:{http_port}/healthz")
            if health["readings"] >= 10 and health["rejected"] >= 1:
                break
            time.sleep(0.2)
        assert health["readings"] == 10 and health["rejected"] == 1
        # Counted when processed; stored by the writer thread a moment later.
        deadline = time.time() + 10
        base = f"http://127.0.0.1:{http_port}"
        with pytest.raises(urllib.error.HTTPError, match="401"):
            get(f"{base}/api/dead-letters")  # raw device payloads: never without a login
        session = login(base, "admin", "a long passphrase")
        while not (dead := get(f"{base}/api/dead-letters", session)) and time.time() < deadline:
            time.sleep(0.1)
        assert dead[0]["reason"] == "unknown_device" and "wr-z" in dead[0]["raw"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "event=\"vigil running\"" in stderr
