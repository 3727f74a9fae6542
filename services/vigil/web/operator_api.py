"""HTTP for operators: a small read-only JSON API (alerts, dead letters).

Every read is the access policy's (vigil.web.access): alerts are filtered to the caller's
patients, another patient's alert answers 404 (no existence leak), dead letters are a ward
admin's.

/healthz and /metrics belong to the runtime's service skeleton (vigil.runtimes.shared.skeleton);
these routes only read the store, through `OperatorView`, and know no runtime.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from vigil.core.access import Permission
from vigil.shell.stores.sql import SqlStore
from vigil.web.access import may_see, patients_in_scope, require
from vigil.web.audit_trail import note_read
from vigil.web.json import dumps
from vigil.web.params import path_id, query_id, query_int


class OperatorView(Protocol):
    """What the operator API reads from the runtime that serves it."""

    store: SqlStore


def add_operator_routes(app: web.Application, view: OperatorView) -> None:
    """Add /api/alerts, /api/alerts/{alert_id} and /api/dead-letters to `app`."""

    async def alerts(request: web.Request) -> web.Response:
        require(request, Permission.READ_VITALS)
        rows = view.store.alerts(patient_id=query_id(request, "patient_id"), limit=query_int(request, "limit", default=100),
                                 patient_ids=patients_in_scope(request))
        note_read(request, "read alerts", (row["patient_id"] for row in rows))
        return web.json_response(rows, dumps=dumps)

    async def alert(request: web.Request) -> web.Response:
        alert_id = path_id(request, "alert_id")
        row = view.store.alert(alert_id)
        if row is None or not may_see(request, Permission.READ_VITALS, row["patient_id"]):
            note_read(request, "read alert", [None], alert_id)  # a miss (or another's alert) is audited too
            raise web.HTTPNotFound(text="no such alert")
        note_read(request, "read alert", [row["patient_id"]], alert_id)
        return web.json_response(row, dumps=dumps)

    async def dead_letters(request: web.Request) -> web.Response:
        require(request, Permission.READ_DEAD_LETTERS)
        rows = [dict(row, raw=bytes(row["raw"])[:2048].decode("utf-8", "replace")) for row in view.store.dead_letters(
            limit=query_int(request, "limit", default=100), patient_ids=patients_in_scope(request))]
        note_read(request, "read dead letters", (row["patient_id"] for row in rows))
        return web.json_response(rows, dumps=dumps)

    app.router.add_get("/api/alerts", alerts)
    app.router.add_get("/api/alerts/{alert_id}", alert)
    app.router.add_get("/api/dead-letters", dead_letters)
