"""A clinician in the loop (VIGIL_APPROVE_PATIENT_TEXTS, issue 14): the template text reaches the
patient at once; the language model's richer text waits in the ward console until a physician
approves it (then it reaches the patient's app) or refuses it (never sent). A nurse cannot decide,
a physician of another ward does not see it, and each decision names the logged-in physician in
the message's record and in the access audit."""

from __future__ import annotations

import httpx
import pytest
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward, wait_until

from vigil.core.identity import Role

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]
PASSWORD = "a long passphrase"


async def login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    me = await http.post("/api/login", json={"username": username, "password": PASSWORD})
    assert me.status_code == 200, me.text
    return {"X-CSRF-Token": me.json()["csrf_token"]}


@pytest.mark.parametrize("decision", ["approve", "refuse"])
async def test_a_held_model_text_reaches_the_patient_only_once_a_physician_approves(
        decision, tmp_path, free_port, http_port, smtp, monkeypatch):
    controller, _ = smtp
    monkeypatch.setenv("VIGIL_APPROVE_PATIENT_TEXTS", "1")
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        accounts = runtime.alerting.people.accounts
        accounts.add("ahmed", Role.PHYSICIAN, wards=["ward"], display_name="Dr Ahmed", password=PASSWORD)
        accounts.add("nora", Role.NURSE, wards=["ward"], display_name="Nurse Nora", password=PASSWORD)
        accounts.add("other", Role.PHYSICIAN, wards=["ward-b"], display_name="Dr Other", password=PASSWORD)
        store, hub = runtime.alerting.store, runtime.alerting.hub
        try:
            held = await wait_until(lambda: store.held_texts(), 20, "the model's text held for approval")
            await wait_until(lambda: [r for r in store.outbox_rows() if r["recipient_id"] == "console"
                                      and r["text_source"] == "llm" and r["status"] == "sent"], 20, "the console's copy")
            [text] = held
            patient_events = lambda: [e.to_json() for e in hub.events("patient:pt-7")]  # noqa: E731
            assert patient_events(), "the template text reached the patient at once"
            assert all(e["key"] != text["key"] for e in patient_events()), "the model's text is held"
            assert any(r["channel"] == "sms" and r["recipient_id"] == "patient:pt-7" and r["status"] == "sent"
                       for r in store.outbox_rows()) or twilio.messages
            base = f"http://127.0.0.1:{http_port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as nurse, \
                    httpx.AsyncClient(base_url=base, timeout=10) as other, \
                    httpx.AsyncClient(base_url=base, timeout=10) as doctor:
                nurse_csrf = await login(nurse, "nora")
                assert (await nurse.get("/api/text-reviews")).status_code == 403
                assert (await nurse.post(f"/api/text-reviews/{text['key']}/approve", headers=nurse_csrf)).status_code == 403
                other_csrf = await login(other, "other")
                assert (await other.get("/api/text-reviews")).json() == [], "another ward's physician sees nothing"
                assert (await other.post(f"/api/text-reviews/{text['key']}/approve", headers=other_csrf)).status_code == 404
                csrf = await login(doctor, "ahmed")
                listed = (await doctor.get("/api/text-reviews")).json()
                assert [(t["key"], t["patient_id"], t["incident_state"]) for t in listed] == [(text["key"], "pt-7", "open")]
                assert (await doctor.post(f"/api/text-reviews/{text['key']}/{decision}")).status_code == 403  # no CSRF
                answer = await doctor.post(f"/api/text-reviews/{text['key']}/{decision}", headers=csrf)
                assert answer.status_code == 200 and answer.json() == {
                    "key": text["key"], "approved": decision == "approve", "by": "Dr Ahmed"}
                again = await doctor.post(f"/api/text-reviews/{text['key']}/approve", headers=csrf)
                assert again.status_code == 409, "decided once, by one physician"
                assert (await doctor.get("/api/text-reviews")).json() == []
            row = store.held_text(text["key"])
            assert row["payload"]["review"]["by"] == "local:ahmed" and row["payload"]["review"]["by_name"] == "Dr Ahmed"
            if decision == "approve":
                await wait_until(lambda: [e for e in patient_events() if e["key"] == text["key"]], 10,
                                 "the approved text in the patient's app")
                assert store.held_text(text["key"])["status"] == "sent"
            else:
                await runtime.drain()
                assert store.held_text(text["key"])["status"] == "refused"
                assert all(e["key"] != text["key"] for e in patient_events()), "a refused text is never sent"
            audited = [(r["subject"], r["action"], r["patient_id"], r["outcome"]) for r in runtime.alerting.audit.export()
                       if "patient text" in r["action"]]
            assert ("local:ahmed", f"{decision} patient text", "pt-7", "ok") in audited
            assert ("local:nora", f"{decision} patient text", None, "denied") not in audited  # refused before reading
        finally:
            await runtime.stop()
