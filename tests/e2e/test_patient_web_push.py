"""Web Push end to end: a patient's phone subscribes through the app's API, an alert is raised, and
the alert's patient text reaches a Web Push service (the local stand-in, tests/standins) signed with
VAPID and decrypts (RFC 8291) to exactly the text Vigil sent. A forged VAPID signature is refused by
the push service; a subscription the push service says is gone (404/410) is forgotten."""

from __future__ import annotations

import json

import pytest
from patient_phone import Phone, vapid_private_key
from pywebpush import WebPushException, webpush_async
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from standins.web_push_service import WebPushService
from ward import SID, TOKEN, run_ward, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]


async def test_an_alerts_patient_text_reaches_the_push_service_and_decrypts(tmp_path, free_port, http_port, smtp,
                                                                             monkeypatch):
    controller, _ = smtp
    monkeypatch.setenv("VIGIL_VAPID_PRIVATE_KEY", vapid_private_key())
    with WebPushService() as push, TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        phone = Phone(f"http://127.0.0.1:{http_port}")
        gone_phone: dict = {}

        async def subscribe(runtime) -> None:
            assert await phone.enrol(runtime.alerting.people.codes.issue("pt-7", "local:nurse")) == 200
            status, key = await phone.get("/api/patient/push-key")
            assert status == 200
            subscription = push.subscribe(application_server_key=key["public_key"])
            assert (await phone.post("/api/patient/push-subscriptions", {**subscription, "language": "zh"}))[0] == 201
            gone_phone.update(push.subscribe(application_server_key=key["public_key"]))
            assert (await phone.post("/api/patient/push-subscriptions", {**gone_phone, "language": "zh"}))[0] == 201
            push.make_gone(gone_phone["endpoint"], 410)

        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch,
                                 before_readings=subscribe)
        try:
            await wait_until(lambda: push.received, 20, "a push message")
            message = json.loads(push.received[0]["text"])
            sent = [row for row in runtime.alerting.store.outbox_rows() if row["recipient_id"] == "patient:pt-7"
                    and row["channel"] == "app" and row["status"] == "sent"]
            assert message["body"] == sent[0]["body"] and "Vigil" in message["body"]
            assert push.received[0]["ttl"] > 0 and push.received[0]["vapid_sub"].startswith("mailto:")
            # The push service said 410 for the second phone: Vigil forgot it, kept the first.
            await wait_until(lambda: len(runtime.alerting.patient_app.subscriptions("pt-7")) == 1, 10, "gone forgotten")
            assert (410, "no such subscription") in push.refused
            # The app's messages show the same text (and the richer one that followed), unread until opened.
            status, messages = await phone.get("/api/patient/messages")
            shown = next(m for m in messages if m["body"] == message["body"])
            assert status == 200 and shown["read_t"] is None and shown["from"] == "vigil"
        finally:
            await phone.close()
            await runtime.stop()


async def test_a_forged_vapid_signature_is_refused_by_the_push_service():
    with WebPushService() as push:
        subscription = push.subscribe()
        info = {"endpoint": subscription["endpoint"], "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}}
        key = vapid_private_key()
        await webpush_async(info, "genuine", vapid_private_key=key, vapid_claims={"sub": "mailto:ward@example.org"}, ttl=60)
        assert [m["text"] for m in push.received] == ["genuine"]
        from py_vapid import Vapid
        headers = Vapid.from_string(key).sign({"sub": "mailto:ward@example.org", "aud": push.origin,
                                               "exp": 2_000_000_000})
        token, _, k = headers["Authorization"][len("vapid t="):].partition(", k=")
        forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        with pytest.raises(WebPushException) as refused:
            await webpush_async(info, "forged", headers={"Authorization": f"vapid t={forged}, k={k}"}, ttl=60)
        assert refused.value.response.status == 401
        other = vapid_private_key()  # signed by another key than the one named in k
        with pytest.raises(WebPushException):
            other_headers = Vapid.from_string(other).sign({"sub": "mailto:x@example.org", "aud": push.origin})
            other_token = other_headers["Authorization"][len("vapid t="):].partition(", k=")[0]
            await webpush_async(info, "forged", headers={"Authorization": f"vapid t={other_token}, k={k}"}, ttl=60)
        assert [m["text"] for m in push.received] == ["genuine"]
        assert [status for status, _ in push.refused] == [401, 401]
