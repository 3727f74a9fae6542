"""The alerting service, assembled: desk, explanation worker, outbox dispatcher, push hub, API.

Both runtimes run the same thing. The embedded runtime feeds the desk from its pipeline (same
SQLite transaction); `vigil notifier` feeds it from the `vigil.alerts` topic (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from importlib.resources import files
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from vigil.alerting.desk import AlertDesk
from vigil.alerting.explaining import ExplanationWorker, template_texts
from vigil.alerting.store import DeskStore
from vigil.explain.explainer import Explainer
from vigil.explain.llm import LlmConfig
from vigil.notify.channels.base import Channel
from vigil.notify.channels.push import PushHub, add_push_routes
from vigil.notify.channels.registry import ChannelSettings, build_channels
from vigil.notify.dispatcher import Dispatcher
from vigil.observability.metrics import Metrics
from vigil.registry import Registry
from vigil.settings import VigilSettings
from vigil.stores.sql import WriteBatch

log = logging.getLogger("vigil.alerting")
# The ward console: one static page on the incident API and the console's push stream.
CONSOLE_HTML = files("vigil.alerting").joinpath("console.html").read_text(encoding="utf-8")


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for each to finish (errors at shutdown are not news)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


class AlertingService:
    def __init__(
        self,
        settings: VigilSettings,
        registry: Registry,
        engine: Engine,
        write: Callable[[WriteBatch], None],
        metrics: Metrics,
        *,
        clock: Callable[[], float],
        channels: dict[str, Channel] | None = None,
        llm: LlmConfig | None = None,
    ) -> None:
        self.settings = settings
        self.write = write
        self.clock = clock
        self.store = DeskStore(engine)
        config = llm if llm is not None else LlmConfig.from_env()
        self.explainer = Explainer(config)
        self.llm_on = config is not None
        if channels is None:
            self.hub = PushHub()
            channels = build_channels(ChannelSettings(), hub=self.hub)
        else:
            app = channels.get("app")
            self.hub = getattr(app, "hub", None) or PushHub()
        self.channels = channels
        self.dispatcher = Dispatcher(self.store, channels, metrics, clock=clock, poll_s=settings.notify_poll_s)
        self.worker = ExplanationWorker(self.explainer, self.store, registry, metrics,
                                        emergency_number=settings.emergency_number, clock=clock, wake=self.dispatcher.wake)
        self.desk = AlertDesk(registry, self.store, template_texts(self.explainer, settings.emergency_number), metrics,
                              policy=settings.lifecycle_policy(), ward_webhook=settings.ward_webhook_url, clock=clock,
                              on_raised=self.worker.submit)
        self.desk.wake = self.dispatcher.wake
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        restored = self.desk.restore()
        if restored:
            log.info("incidents restored", extra={"unresolved": restored})
        self.tasks = [asyncio.create_task(self.dispatcher.run(), name="outbox-dispatcher"),
                      asyncio.create_task(self.worker.run(), name="explanations")]

    # -- clinician actions (the API) ----------------------------------------------------------

    def act(self, ident: str, action: str, actor: str, note: str = "") -> dict[str, Any] | None:
        """Acknowledge or resolve an incident (or the incident of an alert id). None: unknown."""
        incident_id = self.desk.incident_id_for(ident)
        if incident_id is None or self.store.incident(incident_id) is None:
            return None
        batch = WriteBatch()
        try:
            if action == "acknowledge":
                self.desk.acknowledge(incident_id, actor, batch)
            else:
                self.desk.resolve(incident_id, actor, note, batch)
            self.write(batch)
        except Exception:
            self.desk.restore()  # the book ran ahead of a failed transaction: reload what is durable
            raise
        self.desk.committed()
        return self.store.incident(incident_id)

    def tick(self, now: float) -> None:
        batch = WriteBatch()
        try:
            self.desk.tick(now, batch)
            if batch:
                self.write(batch)
                self.desk.committed()
        except Exception:
            self.desk.restore()
            raise

    def health(self) -> dict[str, Any]:
        return {
            "open_incidents": len(self.desk.book.incidents),
            "explainer": "llm" if self.llm_on else "templates",
            "explanations_pending": self.worker.queue.qsize(),
            **self.dispatcher.health(),
        }

    def add_routes(self, app: web.Application) -> None:
        add_incident_routes(app, self)
        async def authorize(request: web.Request, _inbox: str) -> bool:
            return self._authorized(request, query_token=True)

        async def console(_request: web.Request) -> web.Response:
            return web.Response(text=CONSOLE_HTML, content_type="text/html", charset="utf-8")

        app.router.add_get("/console", console)

        add_push_routes(app, self.hub, authorize=authorize if self.settings.api_token else None)

    def _authorized(self, request: web.Request, *, query_token: bool = False) -> bool:
        """The bearer token; for the push streams also `?access_token=`, because a browser's
        EventSource cannot set headers (keep such URLs out of shared logs)."""
        expected = self.settings.api_token or ""
        if hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {expected}"):
            return True
        return query_token and hmac.compare_digest(request.query.get("access_token", ""), expected)

    async def stop(self) -> None:
        await cancel_tasks(self.tasks)
        await self.dispatcher.close()
        self.hub.close()


def add_incident_routes(app: web.Application, service: AlertingService) -> None:
    """GET /api/incidents[?state=&patient_id=], GET /api/incidents/{id} (with audit trail,
    notifications and explanations), POST /api/incidents/{id}/acknowledge and /resolve with a
    JSON body {"actor": "...", "note": "..."}; {id} may also be an alert id."""
    from vigil.embedded.http import _dumps

    store = service.store

    async def list_incidents(request: web.Request) -> web.Response:
        rows = await asyncio.to_thread(store.incidents, state=request.query.get("state"),
                                       patient_id=request.query.get("patient_id"),
                                       limit=int(request.query.get("limit", 200)))
        return web.json_response([{k: v for k, v in row.items() if k != "doc"} for row in rows], dumps=_dumps)

    async def one_incident(request: web.Request) -> web.Response:
        incident_id = service.desk.incident_id_for(request.match_info["ident"])
        row = None if incident_id is None else await asyncio.to_thread(store.incident, incident_id)
        if row is None:
            raise web.HTTPNotFound(text="no such incident")
        row = dict(row)
        row["alerts"] = row.pop("doc").get("members", {})
        row["audit"] = await asyncio.to_thread(store.audit, incident_id)
        row["notifications"] = [{k: n[k] for k in ("key", "event", "recipient_id", "channel", "status", "attempts",
                                                   "created_t", "sent_t", "last_error", "text_source")}
                                for n in await asyncio.to_thread(store.outbox_rows, incident_id=incident_id)]
        row["explanations"] = {a: await asyncio.to_thread(store.explanations_for, a) for a in row["alerts"]}
        return web.json_response(row, dumps=_dumps)

    def action(name: str):
        async def handler(request: web.Request) -> web.Response:
            if service.settings.api_token and not service._authorized(request):
                raise web.HTTPUnauthorized(text="a bearer token is required (VIGIL_API_TOKEN)")
            try:
                body = await request.json() if request.can_read_body else {}
            except ValueError:
                raise web.HTTPBadRequest(text="body must be JSON: {\"actor\": \"...\", \"note\": \"...\"}") from None
            actor = str(body.get("actor") or "").strip()
            if not actor:
                raise web.HTTPBadRequest(text="'actor' is required: the audit trail records who did it")
            row = service.act(request.match_info["ident"], name, actor[:128], str(body.get("note") or "")[:2000])
            if row is None:
                raise web.HTTPNotFound(text="no such incident")
            return web.json_response({k: v for k, v in row.items() if k != "doc"}, dumps=_dumps)
        return handler

    app.router.add_get("/api/incidents", list_incidents)
    app.router.add_get("/api/incidents/{ident}", one_incident)
    app.router.add_post("/api/incidents/{ident}/acknowledge", action("acknowledge"))
    app.router.add_post("/api/incidents/{ident}/resolve", action("resolve"))
