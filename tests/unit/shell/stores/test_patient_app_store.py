"""The patient app's store: messages newest first with read receipts (the first reading counts),
whose message a key is, answers kept, and push subscriptions per patient (moved, forgotten)."""

from __future__ import annotations

from vigil.shell.patient_app.today import monitor_state
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import outbox
from vigil.shell.stores.migrate import upgrade
from vigil.shell.stores.tables import metadata


def outbox_row(key: str, patient: str, t: float, status: str = "sent", channel: str = "app", revision: int = 1) -> dict:
    return {"key": key, "incident_id": "in-1", "patient_id": patient, "event": "opened", "revision": revision,
            "recipient_id": f"patient:{patient}", "role": "patient", "audience": "patient", "channel": channel,
            "address": f"patient:{patient}", "language": "en", "severity": "high", "critical": False, "subject": "Vigil",
            "body": f"text {key}", "payload": {"alert": {"alert_id": "al-1"}}, "text_source": "template", "status": status,
            "attempts": 1, "deliver_after": t, "next_attempt_t": t, "created_t": t, "sent_t": t}


def test_messages_receipts_and_owners(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/v.sqlite")
    app = PatientAppStore(store.engine)
    with store.engine.begin() as conn:
        conn.execute(outbox.insert(), [outbox_row("k1", "pt-1", 100.0), outbox_row("k1-sms", "pt-1", 100.0, channel="sms"),
                                       outbox_row("k2", "pt-1", 200.0, revision=2), outbox_row("k3", "pt-1", 300.0, "pending", revision=3),
                                       outbox_row("other", "pt-2", 400.0)])
    care = app.add_care_message("pt-1", "local:li", "Nurse Li", "Please call us", 250.0)
    messages = app.messages("pt-1")
    assert [m["key"] for m in messages] == [care["key"], "k2", "k1"]  # one per event, delivered only, newest first
    assert messages[0]["from"] == "care_team" and messages[0]["author"] == "Nurse Li"
    assert app.mark_read("pt-1", "k2", 500.0) == 500.0
    assert app.mark_read("pt-1", "k2", 900.0) == 500.0  # the first reading is the receipt
    assert app.messages("pt-1")[1]["read_t"] == 500.0
    assert app.message_patient("other") == "pt-2" and app.message_patient(care["key"]) == "pt-1"
    assert app.message_patient("k3") is None  # not delivered yet: not a message the patient has
    app.record_reply("pt-1", "in-1", None, "help", 600.0, "patient:pt-1")
    assert [(r["answer"], r["incident_id"]) for r in app.replies("pt-1")] == [("help", "in-1")]
    assert upgrade(store.engine, metadata) == []  # the migration mechanism knows these tables: nothing to add
    store.close()


def test_push_subscriptions(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/v.sqlite")
    app = PatientAppStore(store.engine)
    app.subscribe("pt-1", "https://push.example/a", "p", "a", "en", 1.0)
    app.subscribe("pt-2", "https://push.example/a", "p2", "a2", "zh", 2.0)  # the same browser, now another patient's
    assert app.subscriptions("pt-1") == [] and app.subscriptions("pt-2")[0]["p256dh"] == "p2"
    assert app.unsubscribe("https://push.example/a", "pt-1") == 0  # not yours to remove
    assert app.unsubscribe("https://push.example/a") == 1 and app.subscriptions("pt-2") == []
    store.close()


def test_monitor_not_sending_says_what_to_do():
    quiet = monitor_state([], [{"device_id": "wr-1", "state": "online", "battery": 9.0, "t": 0.0}], 0.0, 3600.0)
    assert quiet["sending"] is False and quiet["advice"] == "charge_and_wear" and quiet["battery"] == 9.0
    fine = monitor_state([], [{"device_id": "wr-1", "state": "online", "battery": 80.0, "t": 0.0}], 3500.0, 3600.0)
    assert fine["sending"] is True and fine["advice"] is None
