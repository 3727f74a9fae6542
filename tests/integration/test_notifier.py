"""`vigil notifier` on the real servers: alert records on Kafka in, incidents in PostgreSQL, SMS
through the twilio package to the Twilio stand-in; killed mid-stream and restarted, it loses
nothing and sends nothing twice; an unacknowledged critical incident escalates until a
clinician acknowledges it through the API."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text
from standins.twilio_api import TwilioStandIn
from stack import own_schema, wait_for, write_roster

from vigil.shell.streams.records import AlertRecord
from vigil.tools.ports import free_port

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

SID, TOKEN = "AC" + "3d" * 16, "token"
ROSTER = {"patients": [{
    "patient_id": "p-001",
    "notifications": {"channels": ["app", "sms"], "phone": "+447700900001"},
    "care_team": [
        {"name": "Dr Ahmed", "phone": "+447700900002", "channels": ["sms"]},
        {"name": "On call", "role": "on_call", "phone": "+447700900003", "channels": ["sms"], "escalation_order": 2},
    ],
}]}


@pytest.fixture
def pg_schema(servers):
    base = servers["VIGIL_DATABASE_URL"]
    schema = "n" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    urls = own_schema(servers, schema)  # made and granted by the owner; the notifier runs on its own role
    engine = create_engine(urls["owner"])
    yield urls, engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def record(alert_id: str, patient: str, kind: str, severity: str, t: float, event: str = "raised") -> AlertRecord:
    alert = {"alert_id": alert_id, "patient_id": patient, "kind": kind, "category": "clinical", "severity": severity,
             "rule": f"{kind} persisted", "values": {"spo2_pct": 87}, "onset_t": t - 300, "raised_t": t,
             "news2": {"score": 7, "band": "high", "parameters": {"spo2": 3, "hr": 2, "rr": 2}, "missing": []},
             "contributors": [], "model_version": None, "cleared_t": None,
             "baselines": {"spo2": 96.0}, "trends": {"spo2": -4.0}}
    return AlertRecord(event=event, alert=alert, t=t)


def produce(servers, topic: str, records: list[AlertRecord]) -> None:
    from aiokafka import AIOKafkaProducer

    from vigil.shell.streams.kafka_login import kafka_security
    from vigil.tools.stack import kafka_settings

    async def send() -> None:
        # The alerts come as the processor sends them: logged in as vigil-processor.
        producer = AIOKafkaProducer(bootstrap_servers=servers["VIGIL_KAFKA_BOOTSTRAP"], acks="all",
                                    **kafka_security(kafka_settings("vigil-processor")))
        await producer.start()
        try:
            for rec in records:
                await producer.send_and_wait(topic, key=rec.alert.patient_id.encode(), value=rec.model_dump_json().encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def rows(engine, sql: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def test_notifier_survives_a_kill_sends_once_and_escalates_until_acknowledged(servers, services, run_id, pg_schema, tmp_path):
    urls, engine = pg_schema
    url = urls["owner"]
    topic = f"vigil.alerts.{run_id}"
    port = free_port()
    with TwilioStandIn(SID, TOKEN) as twilio:
        services.env.update({
            "VIGIL_NOTIFIER_DATABASE_URL": urls["notifier"], "VIGIL_ALERTS_TOPIC": topic,
            "VIGIL_ROSTER": str(write_roster(tmp_path / "roster.yaml", ROSTER)),
            "VIGIL_TWILIO_ACCOUNT_SID": SID, "VIGIL_TWILIO_AUTH_TOKEN": TOKEN, "VIGIL_TWILIO_FROM": "+15005550006",
            "VIGIL_TWILIO_API_BASE": twilio.url,
            # Escalation in seconds, not minutes, so the test sees it.
            "VIGIL_ESCALATE_CRITICAL_S": "6", "VIGIL_REMIND_CRITICAL_S": "1000", "VIGIL_ESCALATION_MAX_LEVEL": "1",
        })
        now = time.time()
        produce(servers, topic, [record("a1", "p-001", "hypoxaemia", "critical", now),
                                 record("a2", "p-001", "tachycardia", "high", now + 1)])
        services.start("notifier", "notifier", "--http-port", str(port))
        wait_for(lambda: len(twilio.messages) >= 2, 60, "the first SMS (patient and doctor)")
        incidents = rows(engine, "select incident_id, state, severity from incidents")
        assert len(incidents) == 1 and incidents[0]["severity"] == "critical"  # a2 joined a1's incident
        incident_id = incidents[0]["incident_id"]

        # Kill it hard, send more (and a duplicate), restart: nothing lost, nothing twice.
        services.kill("notifier")
        produce(servers, topic, [record("a1", "p-001", "hypoxaemia", "critical", now),  # a replay
                                 record("b1", "p-002", "hypoxaemia", "high", now + 2)])
        services.start("notifier", "notifier", "--http-port", str(port))
        wait_for(lambda: len(rows(engine, "select * from incidents where patient_id = 'p-002'")) == 1, 60,
                 "the incident of the record sent while the notifier was down")
        # The escalation timer survived the kill: the on-call number is paged once.
        wait_for(lambda: any(m["to"] == "+447700900003" for m in twilio.messages), 60, "the escalation SMS")
        # A clinician logs in (an account in the same PostgreSQL store) and acknowledges as themself.
        from vigil.core.identity import Role
        from vigil.shell.identity.accounts import Accounts
        from vigil.shell.stores.sql import SqlStore

        store = SqlStore(url)
        Accounts(store.engine).add("dr.ahmed", Role.PHYSICIAN, wards=["ward"], password="a long passphrase")
        store.close()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.post(f"/api/incidents/{incident_id}/acknowledge", json={}).status_code == 401
            me = http.post("/api/login", json={"username": "dr.ahmed", "password": "a long passphrase"}).json()
            response = http.post(f"/api/incidents/{incident_id}/acknowledge", json={},
                                 headers={"X-CSRF-Token": me["csrf_token"]})
        assert response.status_code == 200 and response.json()["state"] == "acknowledged"
        time.sleep(8)  # longer than an escalation interval: nothing more may be sent after the acknowledgement
        sent_to = sorted(m["to"] for m in twilio.messages)
        assert sent_to == ["+447700900001", "+447700900002", "+447700900003"], sent_to

    outbox = rows(engine, "select key, status, channel, recipient_id, event from outbox")
    assert len({r["key"] for r in outbox}) == len(outbox)
    assert {r["status"] for r in outbox} == {"sent"}, [r for r in outbox if r["status"] != "sent"]
    audit = rows(engine, f"select event, actor from incident_audit where incident_id = '{incident_id}' order by revision")
    assert [a["event"] for a in audit] == ["opened", "joined", "escalated", "acknowledged"]
    assert audit[-1]["actor"] == "dr.ahmed"
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
    assert health["alerting"]["sent"] >= 1 and json.dumps(health)
