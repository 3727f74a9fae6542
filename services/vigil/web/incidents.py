"""The incident API: list and read incidents, acknowledge and resolve them."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from vigil.shell.desk.desk import AlertDesk, IncidentClosed
from vigil.shell.stores.desk_store import DeskStore
from vigil.web.audit_trail import note_action, note_read
from vigil.web.auth import bearer_ok
from vigil.web.json import dumps
from vigil.web.params import json_object, one_of, path_id, query_id, query_int

STATES = ("open", "acknowledged", "resolved")
BODY = '{"actor": "...", "note": "..."}'


class IncidentService(Protocol):
    """What the incident API needs from the alerting service that a runtime assembles."""

    store: DeskStore
    desk: AlertDesk
    api_token: str | None

    def act(self, ident: str, action: str, actor: str, note: str = "") -> dict[str, Any] | None: ...


def add_incident_routes(app: web.Application, service: IncidentService) -> None:
    """GET /api/incidents[?state=&patient_id=], GET /api/incidents/{id} (with audit trail,
    notifications and explanations), POST /api/incidents/{id}/acknowledge and /resolve with a
    JSON body {"actor": "...", "note": "..."}; {id} may also be an alert id. Acting on a resolved
    incident answers 409 with the reason; acknowledging twice answers 200 with the incident as it
    stands (the first acknowledgement is kept)."""
    store = service.store

    async def list_incidents(request: web.Request) -> web.Response:
        rows = await asyncio.to_thread(store.incidents, state=one_of(request, "state", STATES),
                                       patient_id=query_id(request, "patient_id"),
                                       limit=query_int(request, "limit", default=200))
        note_read(request, "read incidents", (row["patient_id"] for row in rows))
        return web.json_response([{k: v for k, v in row.items() if k != "doc"} for row in rows], dumps=dumps)

    async def one_incident(request: web.Request) -> web.Response:
        ident = path_id(request, "ident")
        incident_id = service.desk.incident_id_for(ident)
        row = None if incident_id is None else await asyncio.to_thread(store.incident, incident_id)
        note_read(request, "read incident", [] if row is None else [row["patient_id"]], ident)
        if row is None:
            raise web.HTTPNotFound(text="no such incident")
        row = dict(row)
        row["alerts"] = row.pop("doc").get("members", {})
        row["audit"] = await asyncio.to_thread(store.audit, incident_id)
        row["notifications"] = [{k: n[k] for k in ("key", "event", "recipient_id", "channel", "status", "attempts",
                                                   "created_t", "sent_t", "last_error", "text_source")}
                                for n in await asyncio.to_thread(store.outbox_rows, incident_id=incident_id)]
        row["explanations"] = {a: await asyncio.to_thread(store.explanations_for, a) for a in row["alerts"]}
        return web.json_response(row, dumps=dumps)

    def action(name: str):
        async def handler(request: web.Request) -> web.Response:
            if service.api_token and not bearer_ok(request, service.api_token):
                raise web.HTTPUnauthorized(text="a bearer token is required (VIGIL_API_TOKEN)")
            ident = path_id(request, "ident")
            body = await json_object(request, {"actor": 128, "note": 2000}, BODY)
            actor = body.get("actor", "").strip()
            if not actor:
                raise web.HTTPBadRequest(text="'actor' is required: the audit trail records who did it")
            try:
                row = service.act(ident, name, actor, body.get("note", ""))
            except IncidentClosed as closed:
                note_action(request, name, closed.row["patient_id"], ident)
                raise web.HTTPConflict(text=f"incident {closed.row['incident_id']} is resolved "
                                            f"({closed.row.get('resolution') or 'resolved'}): "
                                            f"it can no longer be {name}d") from None
            note_action(request, name, None if row is None else row["patient_id"], ident)
            if row is None:
                raise web.HTTPNotFound(text="no such incident")
            return web.json_response({k: v for k, v in row.items() if k != "doc"}, dumps=dumps)
        return handler

    app.router.add_get("/api/incidents", list_incidents)
    app.router.add_get("/api/incidents/{ident}", one_incident)
    app.router.add_post("/api/incidents/{ident}/acknowledge", action("acknowledge"))
    app.router.add_post("/api/incidents/{ident}/resolve", action("resolve"))
