"""HTTP for operators: /healthz, /metrics, and a small read-only JSON API."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.sql import SqlStore
from vigil.web.json import dumps


class OperatorView(Protocol):
    """What the operator API reads from the runtime that serves it."""

    metrics: Metrics
    store: SqlStore
    source: Any  # the MQTT source (depth), or None before start

    def health(self) -> dict[str, Any]: ...


def build_app(runtime: OperatorView) -> web.Application:
    app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        health = runtime.health()
        return web.json_response(health, status=200 if health["status"] != "down" else 503)

    async def metrics(_request: web.Request) -> web.Response:
        runtime.metrics.queue_depth.set(runtime.source.depth if runtime.source else 0)
        return web.Response(body=runtime.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def alerts(request: web.Request) -> web.Response:
        rows = runtime.store.alerts(patient_id=request.query.get("patient_id"), limit=int(request.query.get("limit", 100)))
        return web.json_response(rows, dumps=dumps)

    async def alert(request: web.Request) -> web.Response:
        row = runtime.store.alert(request.match_info["alert_id"])
        if row is None:
            raise web.HTTPNotFound(text="no such alert")
        return web.json_response(row, dumps=dumps)

    async def dead_letters(_request: web.Request) -> web.Response:
        rows = [dict(row, raw=bytes(row["raw"])[:2048].decode("utf-8", "replace")) for row in runtime.store.dead_letters()]
        return web.json_response(rows, dumps=dumps)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/alerts", alerts)
    app.router.add_get("/api/alerts/{alert_id}", alert)
    app.router.add_get("/api/dead-letters", dead_letters)
    return app
