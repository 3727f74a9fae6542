"""From a wearable's readings to a patient's phone, in the embedded runtime: MQTT in, an alert,
one incident, SMS (twilio package → Twilio stand-in) and e-mail (real SMTP server) out, with the
template text at once; the language model's richer text follows only when it passes every check."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn

from vigil.embedded.runtime import EmbeddedRuntime
from vigil.notify.channels.email import SmtpEmail
from vigil.notify.channels.push import AppPush, PushHub
from vigil.notify.channels.sms import TwilioSms
from vigil.registry import Registry, Roster
from vigil.settings import VigilSettings

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

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
                   monkeypatch) -> EmbeddedRuntime:
    monkeypatch.setenv("VIGIL_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("VIGIL_LLM_MODEL", "standin-gpt")
    monkeypatch.setenv("VIGIL_LLM_TIMEOUT_S", "1.5")
    settings = VigilSettings(data_dir=tmp_path / "data", mqtt_port=free_port, http_port=http_port, models_enabled=False)
    channels = {"app": AppPush(PushHub()), "sms": TwilioSms(SID, TOKEN, "+15005550006", api_base=twilio.url),
                "email": SmtpEmail("127.0.0.1", smtp_port, "vigil@ward.example.org")}
    runtime = EmbeddedRuntime(settings, Registry(ROSTER.model_copy(deep=True)), channels=channels)
    await runtime.start()

    def publish() -> None:  # a device, in its own thread: the broker shares this event loop
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wr-7")
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


@pytest.fixture
def smtp(free_port):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port + 1 if free_port < 65000 else free_port - 1)
    controller.start()
    yield controller, inbox
    controller.stop()


async def test_slow_model_never_holds_the_alert_back(tmp_path, free_port, http_port, smtp, monkeypatch):
    controller, inbox = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("slow", slow_s=5.0) as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        try:
            store = runtime.alerting.store
            await wait_until(lambda: len(twilio.messages) >= 2, 20, "SMS to the patient and the doctor")
            await wait_until(lambda: inbox.messages, 10, "e-mail to the doctor")
            incidents = store.incidents()
            assert len(incidents) == 1 and incidents[0]["category"] == "clinical"
            by_to = {m["to"]: m["body"] for m in twilio.messages}
            assert set(by_to) == {"+8613800000007", "+447700900002"}
            assert "Vigil" in by_to["+8613800000007"] and any("\u4e00" <= c <= "\u9fff" for c in by_to["+8613800000007"])
            assert "85" in by_to["+447700900002"] and "pt-7" in by_to["+447700900002"]
            # The model is still thinking (or has timed out) when the SMS is already out.
            explained = await wait_until(lambda: [e for a in store.alert_rows([r["alert_id"] for r in runtime.store.alerts()])
                                                  for e in store.explanations_for(a)], 20, "the explanation outcome")
            first_sms = min(r["sent_t"] for r in store.outbox_rows() if r["channel"] == "sms")
            assert all(e["source"] == "template" and e["fallback_reason"] == "timeout" for e in explained)
            assert first_sms < min(e["created_t"] for e in explained)
            assert not [r for r in store.outbox_rows() if r["text_source"] == "llm"]  # nothing follows a failure
            # Nothing that identifies the patient went to the model.
            sent = json.dumps(llm.chat_requests(), ensure_ascii=False)
            assert "pt-7" not in sent and "Wang" not in sent and "wr-7" not in sent and "+86" not in sent
        finally:
            await runtime.stop()


async def test_a_good_model_answer_follows_in_the_app(tmp_path, free_port, http_port, smtp, monkeypatch):
    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        try:
            store = runtime.alerting.store
            follow_ups = await wait_until(lambda: [r for r in store.outbox_rows() if r["text_source"] == "llm"
                                                   and r["status"] == "sent"], 20, "the model's follow-up")
            assert {r["channel"] for r in follow_ups} == {"app"}  # no second SMS for richer words
            assert {r["recipient_id"] for r in follow_ups} == {"console", "patient:pt-7"}
            hub = runtime.alerting.hub
            assert [e for e in hub.events("patient:pt-7") if e.to_json()["key"] in {r["key"] for r in follow_ups}]
            template_sms = [r for r in store.outbox_rows() if r["channel"] == "sms"]
            assert {r["text_source"] for r in template_sms} == {"template"}
        finally:
            await runtime.stop()


async def test_incident_api_acknowledges_with_a_name_behind_a_token(tmp_path, free_port, http_port, smtp, monkeypatch):
    import httpx

    controller, _ = smtp
    monkeypatch.setenv("VIGIL_API_TOKEN", "ward-7-token")
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        base = f"http://127.0.0.1:{http_port}"
        auth = {"Authorization": "Bearer ward-7-token"}
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                page = await http.get("/console")
                assert page.status_code == 200 and "EventSource" in page.text
                incidents = (await http.get("/api/incidents?state=open")).json()
                assert len(incidents) == 1
                incident_id = incidents[0]["incident_id"]
                detail = (await http.get(f"/api/incidents/{incident_id}")).json()
                assert detail["audit"][0]["event"] == "opened" and detail["notifications"]
                assert (await http.post(f"/api/incidents/{incident_id}/acknowledge", json={"actor": "x"})).status_code == 401
                assert (await http.post(f"/api/incidents/{incident_id}/acknowledge", json={}, headers=auth)).status_code == 400
                assert (await http.get("/api/inbox?inbox=console")).status_code == 403
                assert (await http.get("/api/inbox?inbox=console&access_token=ward-7-token")).json()["events"]
                acked = await http.post(f"/api/incidents/{incident_id}/acknowledge", json={"actor": "Dr Ahmed"}, headers=auth)
                assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "Dr Ahmed"
                resolved = await http.post(f"/api/incidents/{incident_id}/resolve", headers=auth,
                                           json={"actor": "Dr Ahmed", "note": "phoned the patient; improving"})
                assert resolved.json()["state"] == "resolved"
                audit = (await http.get(f"/api/incidents/{incident_id}")).json()["audit"]
                assert [(a["event"], a["actor"]) for a in audit if a["actor"] != "vigil"] == [
                    ("acknowledged", "Dr Ahmed"), ("resolved", "Dr Ahmed")]
                assert (await http.post("/api/incidents/in-nope/acknowledge", json={"actor": "x"}, headers=auth)).status_code == 404
        finally:
            await runtime.stop()
