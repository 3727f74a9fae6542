"""Model-written patient texts held for a clinician's approval (VIGIL_APPROVE_PATIENT_TEXTS).

GET /api/text-reviews lists the texts waiting, for the patients the caller may approve texts
for; POST /api/text-reviews/{key}/approve releases one for delivery, /refuse drops it for good.
Only a role with `approve_patient_texts` (a physician) may, and only for patients in scope. The
decision records the authenticated clinician (never a name from the request) with the message,
and in the access audit; it answers 409 when the text was decided already or its incident has
resolved (it would no longer be true), and 404 for a text the caller may not see.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from vigil.core.access import Permission
from vigil.core.identity import Principal
from vigil.web.access import patients_in_scope, require
from vigil.web.audit_trail import note_action, note_read
from vigil.web.json import dumps
from vigil.web.params import path_id, query_int


class TextReviews(Protocol):
    """What these routes need from the alerting service."""

    def held_texts(self, patient_ids: frozenset[str] | None, limit: int) -> list[dict[str, Any]]: ...

    def held_text_patient(self, key: str) -> str | None: ...

    def review_text(self, key: str, approve: bool, principal: Principal) -> bool: ...

    def wake(self) -> None: ...


def add_text_review_routes(app: web.Application, service: TextReviews) -> None:
    async def waiting(request: web.Request) -> web.Response:
        require(request, Permission.APPROVE_PATIENT_TEXTS)
        rows = await asyncio.to_thread(service.held_texts, patients_in_scope(request),
                                       query_int(request, "limit", default=100))
        note_read(request, "read texts awaiting approval", (row["patient_id"] for row in rows))
        return web.json_response(rows, dumps=dumps)

    def decision(approve: bool):
        action = "approve patient text" if approve else "refuse patient text"

        async def decide(request: web.Request) -> web.Response:
            principal = require(request, Permission.APPROVE_PATIENT_TEXTS)
            key = path_id(request, "key")
            patient_id = await asyncio.to_thread(service.held_text_patient, key)
            scope = patients_in_scope(request)
            if patient_id is None or (scope is not None and patient_id not in scope):
                note_action(request, action, None, key)
                raise web.HTTPNotFound(text="no such text awaiting approval")
            note_action(request, action, patient_id, key)
            if not await asyncio.to_thread(service.review_text, key, approve, principal):
                raise web.HTTPConflict(text="this text was decided already, or its incident has resolved: "
                                            "it is no longer true")
            if approve:
                service.wake()  # the dispatcher sends it now
            return web.json_response({"key": key, "approved": approve, "by": principal.name}, dumps=dumps)
        return decide

    app.router.add_get("/api/text-reviews", waiting)
    app.router.add_post("/api/text-reviews/{key}/approve", decision(True))
    app.router.add_post("/api/text-reviews/{key}/refuse", decision(False))
