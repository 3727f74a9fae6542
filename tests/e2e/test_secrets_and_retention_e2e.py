"""`vigil run` with every secret set to a unique marker (some from VIGIL_*_FILE), under umask 0, on a
store holding rows past their retention: no marker appears in its logs (DEBUG), /healthz, /metrics or
the CLI's error output; its data directory and files end owner-only; and its start-up purge deletes the
old rows and counts them in vigil_purged_rows_total{kind} (issue 15, "Secrets" and "Data at rest")."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import insert
from standins.openai_api import OpenAIStandIn

from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import access_audit, dead_letters, readings
from vigil.tools.ports import free_port

pytestmark = pytest.mark.slow

DAY = 86400.0
# Every secret Vigil reads, each a marker no log line, page or error may ever show.
DIRECT = {"VIGIL_TWILIO_AUTH_TOKEN": "mk-twilio-Aa11", "VIGIL_WEBHOOK_SECRET": "mk-webhook-Bb22",
          "VIGIL_MQTT_PASSWORD": "mk-mqtt-Cc33", "VIGIL_INFLUX_TOKEN": "mk-influx-Dd44", "VIGIL_API_TOKEN": "mk-api-Ee55",
          "VIGIL_KAFKA_PASSWORD": "mk-kafka-Ii99"}
FROM_FILES = {"VIGIL_LLM_API_KEY": "mk-llm-Ff66", "VIGIL_SMTP_PASSWORD": "mk-smtp-Gg77",
              "VIGIL_OIDC_CLIENT_SECRET": "mk-oidc-Hh88"}
MARKERS = [*DIRECT.values(), *FROM_FILES.values()]


def seed(data_dir, now: float) -> None:
    """A store of an earlier run: rows past every retention, left world-readable."""
    store = SqlStore(f"sqlite:///{data_dir / 'vigil.sqlite'}")
    with store.engine.begin() as conn:
        conn.execute(insert(readings), [dict(patient_id="pt-old", device_id="wr-old", t=now - age * DAY, seq=i, hr=70.0)
                                        for i, age in enumerate((500, 450, 401, 30))])
        conn.execute(insert(dead_letters), [dict(received_at=now - 20 * DAY, topic="x", reason="malformed_json",
                                                 detail="d", raw=b"[")])
        conn.execute(insert(access_audit), [dict(t=now - age * DAY, subject="nurse:jo", name="Jo", role="nurse",
                                                 via="session", patient_id="pt-old", action="read vitals",
                                                 target="pt-old", outcome="ok") for age in (3000, 2950, 100)])
    store.close()
    os.chmod(data_dir, 0o777)
    for path in data_dir.iterdir():
        os.chmod(path, 0o666)


def environment(tmp_path, llm: OpenAIStandIn, http_port: int) -> dict[str, str]:
    env = dict(os.environ, VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_HTTP_PORT=str(http_port),
               VIGIL_MQTT_PORT=str(free_port()), VIGIL_MODELS_ENABLED="false", VIGIL_LOG_LEVEL="DEBUG",
               VIGIL_LLM_BASE_URL=llm.base_url, VIGIL_TWILIO_ACCOUNT_SID="AC" + "0" * 32,
               VIGIL_TWILIO_FROM="+15005550006", VIGIL_TWILIO_API_BASE=f"http://127.0.0.1:{free_port()}",
               VIGIL_SMTP_HOST="127.0.0.1", VIGIL_SMTP_PORT=str(free_port()), VIGIL_SMTP_SENDER="ward@example.org",
               VIGIL_SMTP_USERNAME="ward", **DIRECT)
    for name, value in FROM_FILES.items():
        path = tmp_path / name.lower()
        path.write_text(value + "\n")
        os.chmod(path, 0o600)
        env[f"{name}_FILE"] = str(path)
    return env


def fetch(url: str, headers: dict[str, str] | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=3) as response:
        return response.read().decode()


def metric(text: str, kind: str) -> float:
    prefix = f'vigil_purged_rows_total{{kind="{kind}"}} '
    return float(next(line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)))


def test_vigil_run_keeps_its_secrets_its_files_private_and_purges_past_retention(tmp_path):
    now = time.time()
    (tmp_path / "data").mkdir()
    seed(tmp_path / "data", now)
    http_port = free_port()
    with OpenAIStandIn(api_key=FROM_FILES["VIGIL_LLM_API_KEY"]) as llm:
        env = environment(tmp_path, llm, http_port)
        proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "run"], env=env, stderr=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.umask(0))
        pages = []
        try:
            base = f"http://127.0.0.1:{http_port}"
            deadline = time.time() + 30
            while True:
                try:
                    metrics = fetch(f"{base}/metrics")
                    if 'vigil_purged_rows_total{kind="audit"}' in metrics:
                        break
                except OSError:
                    if proc.poll() is not None:
                        raise
                assert time.time() < deadline, "no purge counted"
                time.sleep(0.2)
            health = fetch(f"{base}/healthz")
            assert json.loads(health)["status"] == "ok"
            alerts = fetch(f"{base}/api/alerts", {"Authorization": f"Bearer {DIRECT['VIGIL_API_TOKEN']}"})
            assert json.loads(alerts) == []  # the service token works (and must not be logged)
            metrics = fetch(f"{base}/metrics")
            pages = [health, metrics, alerts]
            assert metric(metrics, "readings") == 3 and metric(metrics, "audit") == 2
            assert metric(metrics, "dead_letters") == 1
            assert metric(metrics, "notifications") == 0 and metric(metrics, "explanations") == 0
            data = tmp_path / "data"
            assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
            modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in data.iterdir()}
            assert {"vigil.sqlite", "vigil.sqlite-wal", "vigil.sqlite-shm"} <= set(modes)
            assert modes == {name: 0o600 for name in modes}
        finally:
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "permissions tightened to owner-only" in stderr and "retention purge" in stderr
    for marker in MARKERS:
        for where, text in (("logs", stderr + stdout), *((f"page {i}", page) for i, page in enumerate(pages))):
            assert marker not in text, f"{marker} in {where}"


def test_the_cli_error_output_shows_no_secret(tmp_path):
    with OpenAIStandIn() as llm:
        env = environment(tmp_path, llm, free_port())
    for broken in ({"VIGIL_LLM_BASE_URL": "http://llm.example.org/v1"}, {"VIGIL_HTTP_PORT": "eighty"},
                   {"VIGIL_TWILIO_API_BASE": "http://twilio.example.org"}, {"VIGIL_RETAIN_AUDIT_DAYS": "7"}):
        done = subprocess.run([sys.executable, "-m", "vigil.cli", "run"], env={**env, **broken}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith("vigil:"), (broken, done.stderr)
        assert "Traceback" not in done.stderr
        for marker in MARKERS:
            assert marker not in done.stderr + done.stdout, (broken, marker)
