"""A small virtual ward for the notification tests: a roster, a wearable's readings, and an
embedded runtime wired to real channels (Twilio stand-in, SMTP) and a model stand-in."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.shell.notify.channels.email import SmtpEmail
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.shell.notify.channels.sms import TwilioSms
from vigil.shell.registry import Registry, Roster
from vigil.settings import VigilSettings

SID, TOKEN = "AC" + "4c" * 16, "token"
ROSTER = Roster.model_validate({"patients": [{
    "patient_id": "pt-7", "language": "zh", "display_name": "Wang Fang",
    "devices": [{"device_id": "wr-7"}],
    "notifications": {"channels": ["app", "sms"], "phone": "+8613800000007"},
    "care_team": [{"name": "Dr Ahmed", "phone": "+447700900002", "email": "ahmed@ward.example.org",
                   "channels": ["sms", "email"]}],
}]})


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, _server, _session, envelope):  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


def readings(now: datetime) -> list[str]:
    """Twenty minutes at one sample per 10 s: ten calm, then SpO2 falls to 85 % and stays."""
    payloads, seq = [], 0
    for batch_start in range(0, 1200, 60):
        samples = []
        for i in range(6):
            seq += 1
            offset = batch_start + i * 10
            spo2 = 97.0 if offset < 600 else 85.0
            samples.append({"ts": (now - timedelta(seconds=1200 - offset)).isoformat(), "seq": seq, "hr_bpm": 78.0,
                            "spo2_pct": spo2, "rr_per_min": 17.0, "temp_c": 36.9, "accel_g": 0.01, "battery_pct": 80})
        payloads.append(json.dumps({"v": 1, "device_id": "wr-7", "samples": samples}))
    return payloads


async def run_ward(tmp_path, free_port, http_port, llm: OpenAIStandIn, twilio: TwilioStandIn, smtp_port: int,
                   monkeypatch, before_readings=None) -> EmbeddedRuntime:
    """`before_readings(runtime)`: awaited once the runtime runs, before the wearable sends (a phone subscribing)."""
    monkeypatch.setenv("VIGIL_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("VIGIL_LLM_MODEL", "standin-gpt")
    monkeypatch.setenv("VIGIL_LLM_TIMEOUT_S", "1.5")
    settings = VigilSettings(data_dir=tmp_path / "data", mqtt_port=free_port, http_port=http_port, models_enabled=False)
    channels = {"app": AppPush(PushHub()), "sms": TwilioSms(SID, TOKEN, "+15005550006", api_base=twilio.url),
                "email": SmtpEmail("127.0.0.1", smtp_port, "vigil@ward.example.org")}
    runtime = EmbeddedRuntime(settings, Registry(ROSTER.model_copy(deep=True)), channels=channels)
    await runtime.start()
    password = runtime.credentials.enrol("wr-7")  # the device's own login (issue 11)
    if before_readings is not None:
        await before_readings(runtime)

    def publish() -> None:  # a device, in its own thread: the broker shares this event loop
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-7")
        client.username_pw_set("wr-7", password)
        client.connect("127.0.0.1", free_port)
        client.loop_start()
        for payload in readings(datetime.now(timezone.utc)):
            client.publish("vigil/v1/devices/wr-7/vitals", payload, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    await asyncio.to_thread(publish)
    await runtime.drain()
    return runtime


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")

