"""End to end: simulator -> embedded MQTT broker -> processor -> SQLite -> alerts."""

import asyncio
import io
import json
import urllib.request

import pytest

from vigil.runtimes.embedded.demo import DemoOptions, run_demo

pytestmark = pytest.mark.slow


def run(tmp_path, port, http_port, **kw):
    options = DemoOptions(data_dir=tmp_path, mqtt_port=port, http_port=http_port, **kw)
    out = io.StringIO()
    summary = asyncio.run(run_demo(options, out))
    return summary, out.getvalue()


def test_injected_events_raise_alerts(tmp_path, free_port, http_port):
    summary, text = run(tmp_path, free_port, http_port, patients=6, duration_s=30, speed=200, scenarios="clinical",
                        bad_payload_rate=0.02)
    assert summary["readings"] > 1000
    assert summary["alerts"] >= 2
    assert summary["sensitivity"] is not None and summary["sensitivity"] >= 0.5
    assert summary["first_alert_after_s"] is not None and summary["first_alert_after_s"] < 60
    assert summary["rejected"] == sum(summary["rejected_by_reason"].values()) > 0
    assert "ALERT" in text and "patient:" in text and "clinician:" in text
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert truth and truth[0]["scenario"] == "hypoxaemia"


def test_calm_cohort_stays_quiet(tmp_path, free_port, http_port):
    summary, _ = run(tmp_path, free_port, http_port, patients=8, duration_s=20, speed=300, scenarios="none",
                     bad_payload_rate=0.0)
    assert summary["readings"] > 1000
    clinical = {k: v for k, v in summary["alerts_by_kind"].items() if k not in ("low_battery", "device_offline", "poor_signal")}
    assert clinical == {}
    assert summary["false_alerts_per_patient_day"] == 0.0


def test_health_and_metrics_while_running(tmp_path, free_port, http_port):
    import threading

    seen = {}

    def probe():
        import time

        deadline = time.time() + 15
        while time.time() < deadline and "metrics" not in seen:
            try:
                seen["health"] = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1).read())
                seen["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=1).read().decode()
            except OSError:
                time.sleep(0.2)

    thread = threading.Thread(target=probe)
    thread.start()
    run(tmp_path, free_port, http_port, patients=3, duration_s=6, speed=100)
    thread.join()
    assert seen["health"]["status"] == "ok" and seen["health"]["mqtt"]["connected"]
    assert "vigil_readings_accepted_total" in seen["metrics"]
