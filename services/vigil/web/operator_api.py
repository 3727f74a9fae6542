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
from vigil.web.json import dumps


class OperatorView(Protocol):
    """What the operator API reads from the runtime that serves it."""

    store: SqlStore


def add_operator_routes(app: web.Application, view: OperatorView) -> None:
    """Add /api/alerts, /api/alerts/{alert_id} and /api/dead-letters to `app`."""

    async def alerts(request: web.Request) -> web.Response:
        require(request, Permission.READ_VITALS)
        rows = view.store.alerts(patient_id=request.query.get("patient_id"), limit=int(request.query.get("limit", 100)),
                                 patient_ids=patients_in_scope(request))
        return web.json_response(rows, dumps=dumps)

    async def alert(request: web.Request) -> web.Response:
        row = view.store.alert(request.match_info["alert_id"])
        if row is None or not may_see(request, Permission.READ_VITALS, row["patient_id"]):
            raise web.HTTPNotFound(text="no such alert")
        return web.json_response(row, dumps=dumps)

    async def dead_letters(request: web.Request) -> web.Response:
        require(request, Permission.READ_DEAD_LETTERS)
        rows = [dict(row, raw=bytes(row["raw"])[:2048].decode("utf-8", "replace"))
                for row in view.store.dead_letters(patient_ids=patients_in_scope(request))]
        return web.json_response(rows, dumps=dumps)

    app.router.add_get("/api/alerts", alerts)
    app.router.add_get("/api/alerts/{alert_id}", alert)
    app.router.add_get("/api/dead-letters", dead_letters)
