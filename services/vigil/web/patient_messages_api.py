"""The ward's side of the patient app: what the patient was told and read, what they answered, and
the care team's own messages to them.

- `GET /api/patients/{patient_id}/messages`: every message to the patient (Vigil's delivered texts and
  the care team's), newest first, each with `read_t` (the read receipt, or null), and the patient's
  answers to alerts (`replies`). Nurses and physicians of the patient's ward; audited.
- `POST /api/patients/{patient_id}/messages` {"body": "..."}: a nurse or physician writes to the
  patient; it reaches the app's inbox and, with Web Push configured, the phone.
Another ward's patient answers 404.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from vigil.core.access import Permission
from vigil.core.identity import Principal
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.web.access import may_see, require
from vigil.web.audit_trail import note_action, note_read
from vigil.web.json import dumps
from vigil.web.params import json_object, path_id

MAX_MESSAGE = 1000


class CareMessages(Protocol):
    patient_app: PatientAppStore

    async def send_care_message(self, patient_id: str, principal: Principal, body: str) -> dict[str, Any]: ...


def add_patient_message_routes(app: web.Application, service: CareMessages) -> None:
    store = service.patient_app

    def visible_patient(request: web.Request, permission: Permission, action: str) -> str:
        patient_id = path_id(request, "patient_id")
        if not may_see(request, permission, patient_id):
            note_read(request, action, [None], patient_id)
            raise web.HTTPNotFound(text="no such patient")
        return patient_id

    async def thread(request: web.Request) -> web.Response:
        require(request, Permission.READ_INCIDENTS)
        patient_id = visible_patient(request, Permission.READ_INCIDENTS, "read patient messages")
        messages = await asyncio.to_thread(store.messages, patient_id, 100)
        replies = await asyncio.to_thread(store.replies, patient_id)
        note_read(request, "read patient messages", [patient_id])
        return web.json_response({"patient_id": patient_id, "messages": messages, "replies": replies}, dumps=dumps)

    async def write(request: web.Request) -> web.Response:
        principal = require(request, Permission.ACT_ON_INCIDENT)
        patient_id = visible_patient(request, Permission.ACT_ON_INCIDENT, "message patient")
        body = (await json_object(request, {"body": MAX_MESSAGE}, '{"body": "..."}')).get("body") or ""
        if not body.strip():
            raise web.HTTPBadRequest(text="required: body (the message to the patient)")
        row = await service.send_care_message(patient_id, principal, body.strip())
        note_action(request, "message patient", patient_id, row["key"])
        return web.json_response(row, status=201, dumps=dumps)

    app.router.add_get("/api/patients/{patient_id}/messages", thread)
    app.router.add_post("/api/patients/{patient_id}/messages", write)
