"""From a wearable's readings to a patient's phone, in the embedded runtime: MQTT in, an alert,
one incident, SMS (twilio package → Twilio stand-in) and e-mail (real SMTP server) out, with the
template text at once; the language model's richer text follows only when it passes every check."""

from __future__ import annotations

import json

import pytest
from standins.openai_api import UNSAFE, OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]


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
            explained = await wait_until(lambda: [e for a in store.alerts_by_id([r["alert_id"] for r in runtime.store.alerts()])
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


async def test_incident_api_acknowledges_with_the_logged_in_name(tmp_path, free_port, http_port, smtp, monkeypatch):
    """Reads need credentials (a service token reads, never acts); acknowledging needs a clinician's
    session and its CSRF token; the audit trail records who is logged in, never a name from the body."""
    import httpx

    from vigil.core.identity import Role

    controller, _ = smtp
    monkeypatch.setenv("VIGIL_API_TOKEN", "ward-7-token")
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        runtime.alerting.people.accounts.add("ahmed", Role.PHYSICIAN, wards=["ward"], display_name="Dr Ahmed",
                                             password="a long passphrase")
        base = f"http://127.0.0.1:{http_port}"
        service = {"Authorization": "Bearer ward-7-token"}
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                page = await http.get("/console")
                assert page.status_code == 200 and "EventSource" in page.text
                assert (await http.get("/api/incidents?state=open")).status_code == 401
                incidents = (await http.get("/api/incidents?state=open", headers=service)).json()
                assert len(incidents) == 1
                incident_id = incidents[0]["incident_id"]
                detail = (await http.get(f"/api/incidents/{incident_id}", headers=service)).json()
                assert detail["audit"][0]["event"] == "opened" and detail["notifications"]
                assert (await http.post(f"/api/incidents/{incident_id}/acknowledge", json={})).status_code == 401
                assert (await http.post(f"/api/incidents/{incident_id}/acknowledge", json={}, headers=service)).status_code == 403
                assert (await http.get("/api/inbox?inbox=console")).status_code == 401
                assert (await http.get("/api/inbox?inbox=console&access_token=ward-7-token")).status_code == 400
                me = (await http.post("/api/login", json={"username": "ahmed", "password": "a long passphrase"})).json()
                csrf = {"X-CSRF-Token": me["csrf_token"]}
                assert (await http.get("/api/inbox?inbox=console")).json()["events"]
                assert (await http.post(f"/api/incidents/{incident_id}/acknowledge", json={})).status_code == 403  # no CSRF
                forged = await http.post(f"/api/incidents/{incident_id}/acknowledge", json={"actor": "mallory"}, headers=csrf)
                assert forged.status_code == 400
                acked = await http.post(f"/api/incidents/{incident_id}/acknowledge", json={}, headers=csrf)
                assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "Dr Ahmed"
                resolved = await http.post(f"/api/incidents/{incident_id}/resolve", headers=csrf,
                                           json={"note": "phoned the patient; improving"})
                assert resolved.json()["state"] == "resolved"
                audit = (await http.get(f"/api/incidents/{incident_id}")).json()["audit"]
                assert [(a["event"], a["actor"]) for a in audit if a["actor"] != "vigil"] == [
                    ("acknowledged", "Dr Ahmed"), ("resolved", "Dr Ahmed")]
                assert (await http.post("/api/incidents/in-nope/acknowledge", json={}, headers=csrf)).status_code == 404
        finally:
            await runtime.stop()


@pytest.mark.parametrize("mode", [*UNSAFE, "legacy_shape", "hostile"])
async def test_no_unsafe_model_text_reaches_a_patient_or_clinician(mode, tmp_path, free_port, http_port, smtp, monkeypatch):
    """A model answering in the requested shape but unsafe in every way we found: the patient
    and the ward get the template text, and no model text follows in the app."""
    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn(mode) as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        try:
            store = runtime.alerting.store
            alert_ids = [r["alert_id"] for r in runtime.store.alerts()]
            explained = await wait_until(lambda: [e for a in store.alerts_by_id(alert_ids) for e in store.explanations_for(a)]
                                         if len(llm.chat_requests()) >= 2 else [], 20, "the explanation outcomes")
            await wait_until(lambda: len(twilio.messages) >= 2, 20, "SMS to the patient and the doctor")
            await runtime.drain()
            rows = store.outbox_rows()
            if mode != "hostile":  # hostile also answers well in turn: that may follow
                assert all(e["source"] == "template" and e["fallback_reason"] for e in explained), explained
                assert [r for r in rows if r["text_source"] == "llm"] == []
            for r in rows:  # whatever went out: no unsafe words of any class
                body = r["body"] or ""
                for unsafe in ("Do not call", "不用拨打", "completely normal", "一切正常", "heart is failing", "心脏不行",
                               "https://", "Acknowledge this incident", "无需处理", "slightly off", "略有偏差",
                               "paracetamol", "对乙酰氨基酚", "sepsis", "败血症", "Drive yourself", "开车"):
                    assert unsafe not in body, (mode, unsafe, body)
        finally:
            await runtime.stop()
