"""`vigil run` with certificates (issue 15, "TLS everywhere it matters"): the API and apps over HTTPS only,
the embedded broker over TLS only, both signed by a test CA made here. A device publishes over TLS and
its readings are stored; a nurse logs in over HTTPS and gets a Secure cookie and HSTS; plain HTTP and
plain MQTT to the TLS ports fail, and so do clients that do not trust the CA."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from vigil.tools.ports import free_port

sys.path.insert(0, str(Path(__file__).parents[1] / "attacks"))
from mqtt_attacker import Client, make_ca  # noqa: E402 - the attacker suite's test CA and MQTT client

pytestmark = pytest.mark.slow

ROSTER = """
version: 1
patients:
  - patient_id: pt-a
    ward: ward
    devices: [{device_id: wr-a}]
"""


def https(url: str, context: ssl.SSLContext, data: bytes | None = None) -> http.client.HTTPResponse:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=5, context=context)


def test_api_and_broker_over_tls_only(tmp_path):
    ca, cert, key = make_ca(tmp_path)
    os.chmod(key, 0o600)  # a TLS key readable by others is refused at start
    (tmp_path / "other").mkdir()
    other_ca = make_ca(tmp_path / "other")[0]
    (tmp_path / "roster.yaml").write_text(ROSTER)
    mqtt_tls_port, http_port = free_port(), free_port()
    env = dict(os.environ, VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_ROSTER=str(tmp_path / "roster.yaml"),
               VIGIL_HTTP_PORT=str(http_port), VIGIL_HTTP_TLS_CERT=cert, VIGIL_HTTP_TLS_KEY=key,
               VIGIL_MQTT_TLS_CERT=cert, VIGIL_MQTT_TLS_KEY=key, VIGIL_MQTT_TLS_PORT=str(mqtt_tls_port),
               VIGIL_MQTT_PLAIN_LISTENER="false", VIGIL_MODELS_ENABLED="false")
    subprocess.run([sys.executable, "-m", "vigil.cli", "user", "add", "nurse", "--role", "nurse", "--ward", "ward",
                    "--password-stdin"], env=env, input="a long passphrase\n", text=True, check=True, capture_output=True)
    password = json.loads(subprocess.run([sys.executable, "-m", "vigil.cli", "device", "enrol", "wr-a"], env=env,
                                         check=True, capture_output=True, text=True).stdout)["password"]
    trusting = ssl.create_default_context(cafile=ca)
    base = f"https://localhost:{http_port}"
    proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                health = json.loads(https(f"{base}/healthz", trusting).read())
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health["status"] == "ok"

        # A device over TLS: its readings are stored.
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-a")
        device.username_pw_set("wr-a", password)
        device.tls_set(ca_certs=ca)
        device.connect("localhost", mqtt_tls_port)
        device.loop_start()
        now = datetime.now(timezone.utc)
        samples = [{"ts": (now - timedelta(seconds=30 - i)).isoformat(), "seq": i, "hr_bpm": 72.0, "spo2_pct": 97.0,
                    "rr_per_min": 15.0} for i in range(1, 6)]
        device.publish("vigil/v1/devices/wr-a/vitals", json.dumps({"v": 1, "device_id": "wr-a", "samples": samples}),
                       qos=1).wait_for_publish(5)
        device.disconnect()
        device.loop_stop()

        # A nurse over HTTPS: a Secure, HttpOnly session cookie, and HSTS on every answer.
        response = https(f"{base}/api/login", trusting,
                         json.dumps({"username": "nurse", "password": "a long passphrase"}).encode())
        cookie = response.headers["Set-Cookie"]
        assert "vigil_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        deadline = time.time() + 15
        while (health := json.loads(https(f"{base}/healthz", trusting).read()))["readings"] < 5:
            assert time.time() < deadline, health
            time.sleep(0.2)
        request = urllib.request.Request(f"{base}/api/dead-letters", headers={"Cookie": cookie.split(";")[0]})
        with pytest.raises(urllib.error.HTTPError) as refused:  # a nurse may not read dead letters: an error answer
            urllib.request.urlopen(request, timeout=5, context=trusting)
        assert refused.value.headers["Strict-Transport-Security"] == "max-age=31536000"  # errors carry HSTS too

        # Refusals: plain HTTP to the HTTPS port; a client that does not trust the CA; plain MQTT to the TLS port;
        # a device that does not trust the CA.
        with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5).read()
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            https(f"{base}/healthz", ssl.create_default_context(cafile=other_ca))
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            https(f"{base}/healthz", ssl.create_default_context())  # the system's CAs: not ours
        assert not Client(mqtt_tls_port, "c-plain", "wr-a", password).connect()
        assert not Client(mqtt_tls_port, "c-other-ca", "wr-a", password, host="localhost", ca_file=other_ca).connect()
        assert Client(mqtt_tls_port, "c-ok", "wr-a", password, host="localhost", ca_file=ca).connect()  # the control
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "PLAIN TEXT" not in stderr and "UNENCRYPTED" not in stderr
