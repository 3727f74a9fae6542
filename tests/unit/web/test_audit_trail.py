"""Every read of a patient's data and every action leaves a row in the access audit: who (the
principal the authentication middleware set), which patients (a list read: one row naming them
all, exported as a line each), what, the outcome, and the caller's address. A caller without
credentials reads nothing (401), so nothing is recorded as read."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from vigil.shell.stores.access_audit import AuditTrail
from vigil.shell.stores.tables import access_audit
from vigil.web.audit_trail import add_audit_trail, note_read

AS_ALICE = {"X-Test-Principal": "alice"}


def audit(runtime) -> list[dict]:
    return list(runtime.alerting.audit.export())


def seen(runtime) -> list[tuple]:
    return [(r["subject"], r["action"], r["patient_id"], r["target"], r["outcome"]) for r in audit(runtime)]


def stored(runtime) -> list[tuple]:
    with runtime.alerting.audit.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(access_audit.c.action, access_audit.c.patient_id,
                                                       access_audit.c.patients).order_by(access_audit.c.id))]


async def test_reading_a_list_records_one_row_naming_every_patient_shown_exported_as_a_line_each(ward):
    runtime, client = ward
    assert len(await (await client.get("/api/incidents", headers=AS_ALICE)).json()) == 2
    assert len(await (await client.get("/api/alerts", headers=AS_ALICE)).json()) == 2
    assert stored(runtime) == [("read incidents", None, " pt-a pt-b "), ("read alerts", None, " pt-a pt-b ")]
    assert sorted(seen(runtime)) == [("local:alice", "read alerts", "pt-a", "", "ok"),
                                     ("local:alice", "read alerts", "pt-b", "", "ok"),
                                     ("local:alice", "read incidents", "pt-a", "", "ok"),
                                     ("local:alice", "read incidents", "pt-b", "", "ok")]
    row = audit(runtime)[0]
    assert (row["name"], row["role"], row["address"], row["status"]) == ("Alice Nurse", "nurse", "127.0.0.1", 200)


async def test_reading_one_incident_or_alert_names_it_and_a_miss_is_recorded_too(ward):
    runtime, client = ward
    incident_id = (await (await client.get("/api/incidents?patient_id=pt-b", headers=AS_ALICE)).json())[0]["incident_id"]
    before = len(audit(runtime))
    assert (await client.get(f"/api/incidents/{incident_id}", headers=AS_ALICE)).status == 200
    assert (await client.get("/api/alerts/a1", headers=AS_ALICE)).status == 200
    assert (await client.get("/api/alerts/nope", headers=AS_ALICE)).status == 404
    assert seen(runtime)[before:] == [("local:alice", "read incident", "pt-b", incident_id, "ok"),
                                      ("local:alice", "read alert", "pt-a", "a1", "ok"),
                                      ("local:alice", "read alert", None, "nope", "not_found")]


async def test_without_credentials_nothing_is_read_so_nothing_is_recorded_as_read(ward):
    runtime, client = ward
    assert (await client.get("/api/dead-letters")).status == 401
    assert (await client.get("/api/alerts?patient_id=pt-a")).status == 401
    assert seen(runtime) == []


async def test_acknowledge_and_resolve_are_recorded_with_their_outcome(ward):
    runtime, client = ward
    body = {"note": "seen"}
    assert (await client.post("/api/incidents/a1/acknowledge", json=body, headers=AS_ALICE)).status == 200
    assert (await client.post("/api/incidents/a1/resolve", json=body, headers=AS_ALICE)).status == 200
    assert (await client.post("/api/incidents/in-nope/resolve", json=body, headers=AS_ALICE)).status == 404
    incident_id = runtime.alerting.desk.incident_id_for("a1")
    assert seen(runtime) == [("local:alice", "acknowledge", "pt-a", incident_id, "ok"),
                             ("local:alice", "resolve", "pt-a", incident_id, "ok"),
                             ("local:alice", "resolve", None, "in-nope", "not_found")]


async def test_the_inbox_and_the_stream_are_recorded_as_they_are_read_or_opened(ward):
    runtime, client = ward
    assert (await client.get("/api/inbox?inbox=console", headers=AS_ALICE)).status == 200
    async with client.get("/api/stream?inbox=console", headers=AS_ALICE) as stream:
        assert stream.status == 200
        assert ("local:alice", "open stream", None, "console", "ok") in seen(runtime)  # before any event
    assert seen(runtime)[0][:2] == ("local:alice", "read inbox")


async def test_healthz_and_metrics_leave_no_row_but_a_refusal_does(ward):
    runtime, client = ward
    await client.get("/healthz")
    await client.get("/metrics")
    assert audit(runtime) == []

    async def refuse(_request: web.Request) -> web.Response:
        raise web.HTTPForbidden(text="not your ward")

    app = web.Application()
    add_audit_trail(app, runtime.alerting.audit)
    app.router.add_get("/api/secret", refuse)
    async with TestClient(TestServer(app)) as other:
        assert (await other.get("/api/secret")).status == 403
    assert seen(runtime) == [("anonymous", "refused", None, "GET /api/secret", "denied")]


async def test_when_the_audit_cannot_be_written_patient_data_is_withheld(tmp_path):
    class Broken(AuditTrail):
        def write(self, rows):
            raise OSError("disk full")

    async def read(request: web.Request) -> web.Response:
        note_read(request, "read alerts", ["pt-a"])
        return web.json_response([{"patient_id": "pt-a", "spo2": 85}])

    from vigil.shell.stores.sql import SqlStore

    app = web.Application()
    add_audit_trail(app, Broken(SqlStore(f"sqlite:///{tmp_path / 'v.sqlite'}").engine))
    app.router.add_get("/api/alerts", read)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/alerts")
        assert response.status == 503 and "pt-a" not in await response.text()
        assert "audit" in await response.text()
    await asyncio.sleep(0)


async def test_a_stream_whose_opening_cannot_be_recorded_does_not_open(ward, monkeypatch):
    runtime, client = ward

    def broken(rows):
        raise OSError("disk full")

    monkeypatch.setattr(runtime.alerting.audit, "write", broken)
    response = await client.get("/api/stream?inbox=console", headers=AS_ALICE)
    assert response.status == 503 and "audit" in await response.text()
    assert runtime.alerting.hub.subscriber_count("console") == 0  # the subscription was closed
