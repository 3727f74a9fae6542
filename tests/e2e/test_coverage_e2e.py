"""Never blind without knowing (issue 13), in the embedded runtime as an operator runs it: a device
told why its payload was refused, a flood of refusals and a last will each become a technical
alert within their (configured) bound, named in /healthz, and monitoring resumes when data does."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import pytest

from vigil.tools.ports import free_port

pytestmark = pytest.mark.slow

ROSTER = """
version: 1
patients:
  - patient_id: pt-a
    devices: [{device_id: wr-a}]
  - patient_id: pt-b
    devices: [{device_id: wr-b}]
"""
WILL_S, REJECTED_S = 2.0, 3.0


def get(url: str, headers: dict[str, str] | None = None):
    return json.loads(urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2).read())


def batch(device_id: str, seq: int, **fields: object) -> str:
    sample = {"ts": datetime.now(timezone.utc).isoformat(), "seq": seq, "hr_bpm": 70.0 + seq % 4,
              "spo2_pct": 96.0 + seq % 3, "rr_per_min": 15.0, **fields}
    return json.dumps({"v": 1, "device_id": device_id, "samples": [sample]})


def enrol(env: dict[str, str], device_id: str) -> str:
    """`vigil device enrol`: the password it prints once."""
    out = subprocess.run([sys.executable, "-m", "vigil.cli", "device", "enrol", device_id], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["password"]


def wait_for(check, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_refusals_are_told_to_the_device_and_floods_and_last_wills_are_incidents_in_time(tmp_path):
    (tmp_path / "roster.yaml").write_text(ROSTER)
    mqtt_port, http_port = free_port(), free_port()
    env = dict(os.environ, VIGIL_MQTT_PORT=str(mqtt_port), VIGIL_HTTP_PORT=str(http_port),
               VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_ROSTER=str(tmp_path / "roster.yaml"),
               VIGIL_COVERAGE_WILL_AFTER_S=str(WILL_S), VIGIL_COVERAGE_REJECTED_AFTER_S=str(REJECTED_S),
               VIGIL_MODELS_ENABLED="false", VIGIL_API_TOKEN="coverage-e2e-service-token")
    passwords = {device: enrol(env, device) for device in ("wr-a", "wr-b")}  # devices log in (issue 11)
    proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "run"], env=env, stderr=subprocess.PIPE, text=True)
    health = lambda: get(f"http://127.0.0.1:{http_port}/healthz")  # noqa: E731
    try:
        wait_for(lambda: _up(health))
        told: list[dict] = []
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-a")
        device.username_pw_set("wr-a", passwords["wr-a"])
        device.on_message = lambda c, u, m: told.append(json.loads(m.payload))
        device.connect("127.0.0.1", mqtt_port)
        device.loop_start()
        device.subscribe("vigil/v1/devices/wr-a/errors", qos=1)
        for seq in range(1, 4):
            device.publish("vigil/v1/devices/wr-a/vitals", batch("wr-a", seq), qos=1).wait_for_publish(5)
        wait_for(lambda: health()["readings"] >= 3)
        # A firmware update renames a field: every payload refused.
        fault = time.time()
        seq = 100
        while time.time() - fault < REJECTED_S + 3:
            seq += 1
            device.publish("vigil/v1/devices/wr-a/vitals", batch("wr-a", seq, heart=70), qos=1).wait_for_publish(5)
            time.sleep(0.3)
            body = health()["coverage"]
            if body["not_monitored"].get("rejected"):
                break
        raised = time.time()
        assert body["not_monitored"] == {"rejected": 1} and body["uncovered_count"] == 0, body
        assert raised - fault <= REJECTED_S + 2.0, "a flood of refusals: an alert within its bound plus a tick"
        assert told and told[0]["reason"] == "schema_invalid" and told[0]["device_id"] == "wr-a"
        assert len(told) <= 2, "rate-limited: one message per device per 10 s"
        # The firmware is fixed: monitored again.
        device.publish("vigil/v1/devices/wr-a/vitals", batch("wr-a", seq + 1), qos=1).wait_for_publish(5)
        wait_for(lambda: not health()["coverage"]["not_monitored"])
        device.disconnect()
        device.loop_stop()

        # wr-b: a last will, without waiting for the silence timeout.
        other = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-b")
        other.username_pw_set("wr-b", passwords["wr-b"])
        other.will_set("vigil/v1/devices/wr-b/status", json.dumps({"v": 1, "device_id": "wr-b", "state": "offline"}),
                       qos=1, retain=True)
        other.connect("127.0.0.1", mqtt_port)
        other.loop_start()
        other.publish("vigil/v1/devices/wr-b/vitals", batch("wr-b", 1), qos=1).wait_for_publish(5)
        wait_for(lambda: health()["readings"] >= 5)
        other.loop_stop()
        fault = time.time()
        other.socket().shutdown(socket.SHUT_RDWR)  # the battery dies: no DISCONNECT, the broker sends the will
        body = wait_for(lambda: (c := health()["coverage"])["not_monitored"].get("offline") and c)
        assert time.time() - fault <= WILL_S + 3.0 and body["uncovered_count"] == 0
        assert health()["status"] == "ok", "not monitored, but an open technical alert says so"
        alerts = get(f"http://127.0.0.1:{http_port}/api/alerts",  # a service reads every ward (issue 11)
                     {"Authorization": "Bearer coverage-e2e-service-token"})
        kinds = {(a["patient_id"], a["kind"]) for a in alerts}
        assert {("pt-a", "not_monitored"), ("pt-b", "device_offline")} <= kinds, kinds
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr[-3000:]


def _up(health) -> bool:
    try:
        return health()["status"] == "ok"
    except OSError:
        return False
