"""The incident API: list and read incidents, acknowledge and resolve them."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from vigil.core.access import Permission
from vigil.core.outcomes import check_outcome
from vigil.shell.desk.desk import AlertDesk, IncidentClosed
from vigil.shell.stores.desk_store import DeskStore
from vigil.web.access import may_see, patients_in_scope, require
from vigil.web.audit_trail import note_action, note_read
from vigil.web.json import dumps
from vigil.web.params import json_object, one_of, path_id, query_id, query_int

STATES = ("open", "acknowledged", "resolved")
BODY = '{"note": "...", "outcome": "true_deterioration|false_alarm|artefact|other"}'


class IncidentService(Protocol):
    """What the incident API needs from the alerting service that a runtime assembles."""

    store: DeskStore
    desk: AlertDesk

    def act(self, ident: str, action: str, actor: str, note: str = "",
            outcome: str | None = None) -> dict[str, Any] | None: ...


def _outcome(body: dict[str, Any], action: str) -> str | None:
    """The outcome label of a resolution (core.outcomes); refused on anything else, or on an acknowledgement."""
    outcome = body.get("outcome") or None
    if outcome is not None and action != "resolve":
        raise web.HTTPBadRequest(text="an outcome is given when resolving, not when acknowledging")
    try:
        return check_outcome(outcome)
    except ValueError as wrong:
        raise web.HTTPBadRequest(text=str(wrong)) from None


def add_incident_routes(app: web.Application, service: IncidentService) -> None:
    """GET /api/incidents[?state=&patient_id=], GET /api/incidents/{id} (with audit trail,
    notifications and explanations), POST /api/incidents/{id}/acknowledge and /resolve with an
    optional JSON body {"note": "..."} (resolve: also "outcome", core.outcomes); {id} may also be an alert id. Everything is filtered to
    the caller's patients (another's incident answers 404); the actor recorded is the
    authenticated person, never a name from the body (a body naming one is refused). Acting on a
    resolved incident answers 409 with the reason; acknowledging twice answers 200 with the
    incident as it stands (the first acknowledgement is kept)."""
    store = service.store

    async def visible_incident(request: web.Request, permission: Permission, action: str) -> dict[str, Any]:
        """The incident row of {ident}, if the caller may `permission` on its patient; else 404 (a
        miss is audited too, without a patient: probing is worth seeing)."""
        ident = path_id(request, "ident")
        incident_id = service.desk.incident_id_for(ident)
        row = None if incident_id is None else await asyncio.to_thread(store.incident, incident_id)
        if row is None or not may_see(request, permission, row["patient_id"]):
            note_read(request, action, [None], ident)
            raise web.HTTPNotFound(text="no such incident")
        return row

    async def list_incidents(request: web.Request) -> web.Response:
        require(request, Permission.READ_INCIDENTS)
        rows = await asyncio.to_thread(store.incidents, state=one_of(request, "state", STATES),
                                       patient_id=query_id(request, "patient_id"),
                                       limit=query_int(request, "limit", default=200), patient_ids=patients_in_scope(request),
                                       with_doc=False)
        note_read(request, "read incidents", (row["patient_id"] for row in rows))
        return web.json_response([{k: v for k, v in row.items() if k != "doc"} for row in rows], dumps=dumps)

    async def one_incident(request: web.Request) -> web.Response:
        require(request, Permission.READ_INCIDENTS)
        row = dict(await visible_incident(request, Permission.READ_INCIDENTS, "read incident"))
        incident_id = row["incident_id"]
        note_read(request, "read incident", [row["patient_id"]], incident_id)
        row["alerts"] = row.pop("doc").get("members", {})
        row["audit"] = await asyncio.to_thread(store.audit, incident_id)
        row["notifications"] = [{k: n[k] for k in ("key", "event", "recipient_id", "channel", "status", "attempts",
                                                   "created_t", "sent_t", "last_error", "text_source")}
                                for n in await asyncio.to_thread(store.outbox_rows, incident_id=incident_id)]
        row["explanations"] = {a: await asyncio.to_thread(store.explanations_for, a) for a in row["alerts"]}
        return web.json_response(row, dumps=dumps)

    def action(name: str):
        async def handler(request: web.Request) -> web.Response:
            actor = require(request, Permission.ACT_ON_INCIDENT).name
            body = await json_object(request, {"actor": 128, "note": 2000, "outcome": 32}, BODY)
            if "actor" in body:
                raise web.HTTPBadRequest(text="'actor' is not taken from the request: the audit trail records who "
                                              "is logged in")
            outcome = _outcome(body, name)
            incident_id = (await visible_incident(request, Permission.ACT_ON_INCIDENT, name))["incident_id"]
            try:
                row = service.act(incident_id, name, actor[:128], body.get("note") or "", outcome)
            except IncidentClosed as closed:
                note_action(request, name, closed.row["patient_id"], incident_id)
                raise web.HTTPConflict(text=f"incident {closed.row['incident_id']} is resolved "
                                            f"({closed.row.get('resolution') or 'resolved'}): "
                                            f"it can no longer be {name}d") from None
            note_action(request, name, None if row is None else row["patient_id"], incident_id)
            if row is None:
                raise web.HTTPNotFound(text="no such incident")
            return web.json_response({k: v for k, v in row.items() if k != "doc"}, dumps=dumps)
        return handler

    app.router.add_get("/api/incidents", list_incidents)
    app.router.add_get("/api/incidents/{ident}", one_incident)
    app.router.add_post("/api/incidents/{ident}/acknowledge", action("acknowledge"))
    app.router.add_post("/api/incidents/{ident}/resolve", action("resolve"))
