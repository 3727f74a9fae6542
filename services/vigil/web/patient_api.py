"""The patient app's API: a signed-in patient's own day, trends, messages, answers and push subscription.

Every route here answers only a patient session (an enrolment code's: vigil.web.login) and only
about that patient: the patient id comes from the session, never from the request. A message key
or incident id of another patient answers 404 (no existence leak), and is audited like every read.
POSTs carry the session's CSRF token (vigil.web.access).

- `GET /api/patient/today`: latest readings with "in your usual range", the monitor's state, open alerts.
- `GET /api/patient/trends?vital=spo2&hours=24`: min/max/mean of one vital per quarter hour (hourly beyond a day).
- `GET /api/patient/messages`: Vigil's delivered texts and the care team's messages, newest first.
- `POST /api/patient/messages/{key}/read`: the read receipt the ward sees.
- `POST /api/patient/answers` {"incident_id", "answer": "ok"|"help"}: into the incident and to the ward.
- `GET /api/patient/push-key`, `POST|DELETE /api/patient/push-subscriptions`: Web Push.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from vigil.core.identity import Principal, Role
from vigil.core.incident import Incident
from vigil.shell.patient_app.today import today
from vigil.shell.registry import Registry
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.shell.trends.model import TrendStore
from vigil.web.access import principal_of
from vigil.web.audit_trail import note_action, note_read
from vigil.web.json import dumps
from vigil.web.params import json_object, one_of, path_id, query_int

ANSWERS = ("ok", "help")
TREND_VITALS = ("spo2", "hr", "rr", "temp", "sbp")
HOUR_S = 3600
QUARTER_S = 900


class PatientAppService(Protocol):
    registry: Registry
    store: DeskStore
    patient_app: PatientAppStore
    trends: TrendStore | None
    emergency_number: str

    def clock(self) -> float: ...

    def open_incidents_of(self, patient_id: str) -> list[Incident]: ...

    def answer(self, patient_id: str, incident_id: str, answer: str, principal: Principal) -> dict[str, Any]: ...

    def push_key(self) -> str | None: ...


def own_patient(request: web.Request) -> str:
    """The signed-in patient's id; anyone else is refused (403): this API is the patient's own."""
    principal = principal_of(request)
    if principal.role is not Role.PATIENT or len(principal.patients) != 1:
        raise web.HTTPForbidden(text="the patient app's API answers only a patient's own session")
    return next(iter(principal.patients))


def add_patient_routes(app: web.Application, service: PatientAppService) -> None:
    store = service.patient_app

    async def day(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        incidents = service.open_incidents_of(patient_id)
        body = await asyncio.to_thread(today, patient_id, service.registry, service.trends, store, incidents,
                                       service.clock())
        body["push_key"] = service.push_key()
        body["emergency_number"] = service.emergency_number
        note_read(request, "read own day", [patient_id])
        return web.json_response(body, dumps=dumps)

    async def trend(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        vital = one_of(request, "vital", TREND_VITALS) or "spo2"
        hours = query_int(request, "hours", default=24, high=24 * 7)
        now = service.clock()
        step = QUARTER_S if hours <= 24 else HOUR_S  # a day in quarter hours: a morning's dip shows
        buckets = [] if service.trends is None else await asyncio.to_thread(
            service.trends.series, patient_id, vital, now - hours * HOUR_S, now, step)
        note_read(request, "read own trend", [patient_id], vital)
        return web.json_response({"vital": vital, "step_s": step, "buckets": [
            {"t": b.t, "min": b.min, "max": b.max, "mean": round(b.mean, 1)} for b in buckets]}, dumps=dumps)

    async def messages(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        rows = await asyncio.to_thread(store.messages, patient_id, query_int(request, "limit", default=50, high=200))
        note_read(request, "read own messages", [patient_id])
        return web.json_response(rows, dumps=dumps)

    async def read(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        key = path_id(request, "key")
        if await asyncio.to_thread(store.message_patient, key) != patient_id:
            note_action(request, "read receipt", None, key)
            raise web.HTTPNotFound(text="no such message")
        read_t = await asyncio.to_thread(store.mark_read, patient_id, key, service.clock())
        note_action(request, "read receipt", patient_id, key)
        return web.json_response({"key": key, "read_t": read_t})

    async def answer(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        body = await json_object(request, {"incident_id": 64, "answer": 8}, '{"incident_id": "in-...", "answer": "ok"}')
        if body.get("answer") not in ANSWERS or not body.get("incident_id"):
            raise web.HTTPBadRequest(text='required: incident_id, and answer "ok" or "help"')
        incident_id = body["incident_id"]
        row = await asyncio.to_thread(service.store.incident, incident_id)
        if row is None or row["patient_id"] != patient_id:
            note_action(request, "answer alert", None, incident_id)
            raise web.HTTPNotFound(text="no such alert")
        result = service.answer(patient_id, incident_id, body["answer"], principal_of(request))  # the desk's book: on the loop
        note_action(request, "answer alert", patient_id, incident_id)
        return web.json_response(result, dumps=dumps)

    app.router.add_get("/api/patient/today", day)
    app.router.add_get("/api/patient/trends", trend)
    app.router.add_get("/api/patient/messages", messages)
    app.router.add_post("/api/patient/messages/{key}/read", read)
    app.router.add_post("/api/patient/answers", answer)
    add_push_subscription_routes(app, service)


def add_push_subscription_routes(app: web.Application, service: PatientAppService) -> None:
    store = service.patient_app

    async def key(request: web.Request) -> web.Response:
        own_patient(request)
        public = service.push_key()
        if public is None:
            raise web.HTTPNotFound(text="Web Push is not configured (VIGIL_VAPID_PRIVATE_KEY)")
        return web.json_response({"public_key": public})

    async def subscribe(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        body = await json_object(request, {"endpoint": 2048, "p256dh": 128, "auth": 64, "language": 8},
                                 '{"endpoint": "https://...", "p256dh": "...", "auth": "...", "language": "en"}')
        endpoint = body.get("endpoint") or ""
        if not endpoint.startswith("https://") and not endpoint.startswith("http://127.0.0.1"):
            raise web.HTTPBadRequest(text="endpoint must be an https URL")
        if not body.get("p256dh") or not body.get("auth"):
            raise web.HTTPBadRequest(text="required: p256dh and auth (the subscription's keys)")
        language = body.get("language") if body.get("language") in ("en", "zh") else "en"
        await asyncio.to_thread(store.subscribe, patient_id, endpoint, body["p256dh"], body["auth"], language,
                                service.clock())
        note_action(request, "push subscribe", patient_id, "")
        return web.json_response({"subscribed": True}, status=201)

    async def unsubscribe(request: web.Request) -> web.Response:
        patient_id = own_patient(request)
        body = await json_object(request, {"endpoint": 2048}, '{"endpoint": "https://..."}')
        removed = await asyncio.to_thread(store.unsubscribe, body.get("endpoint") or "", patient_id)
        note_action(request, "push unsubscribe", patient_id, "")
        return web.json_response({"removed": removed})

    app.router.add_get("/api/patient/push-key", key)
    app.router.add_post("/api/patient/push-subscriptions", subscribe)
    app.router.add_delete("/api/patient/push-subscriptions", unsubscribe)
