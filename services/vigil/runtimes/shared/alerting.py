"""The alerting service, assembled: desk, explanation worker, outbox dispatcher, push hub, API.

Both runtimes run the same thing. The embedded runtime feeds the desk from its pipeline (same
SQLite transaction); `vigil notifier` feeds it from the `vigil.alerts` topic (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from vigil.shell.desk.desk import AlertDesk
from vigil.shell.desk.explanation_worker import ExplanationWorker, template_texts
from vigil.shell.stores.desk_store import DeskStore, WriteLane
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.notify.channels.base import Channel
from vigil.shell.notify.channels.push import PushHub
from vigil.shell.notify.channels.registry import ChannelSettings, build_channels
from vigil.shell.notify.dispatcher import Dispatcher
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import WriteBatch
from vigil.web.auth import bearer_ok
from vigil.web.console import add_console_route
from vigil.web.incidents import add_incident_routes
from vigil.web.push_streams import add_push_routes

log = logging.getLogger("vigil.alerting")


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
        lane: WriteLane | None = None,
    ) -> None:
        self.settings = settings
        self.api_token = settings.api_token
        self.write = write
        self.clock = clock
        self.store = DeskStore(engine, lane)  # lane: the embedded runtime's one writer thread
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
                                        emergency_number=settings.emergency_number, clock=clock, wake=self.dispatcher.wake,
                                        hold_patient_texts=settings.approve_patient_texts)
        self.desk = AlertDesk(registry, self.store, template_texts(settings.emergency_number), metrics,
                              policy=settings.lifecycle_policy(), ward_webhook=settings.ward_webhook_url, clock=clock,
                              on_raised=self.worker.submit, wake=self.dispatcher.wake)
        self.dispatcher.on_undelivered = self.escalate_undelivered
        self.tasks: list[asyncio.Task[None]] = []

    def escalate_undelivered(self, row: dict[str, Any]) -> None:
        """Every channel failed for one recipient: the next person and the ward console hear (issue 13)."""
        batch = WriteBatch()
        try:
            self.desk.undelivered(row["incident_id"], row["recipient_id"], batch)
            if batch:
                self.write(batch)
        except Exception:
            self.desk.restore()
            raise
        self.desk.committed()

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

    def undelivered(self) -> str | None:
        """Recipients reached on no channel lately (the service is degraded), or None."""
        return self.dispatcher.undelivered_reason()

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
            return bearer_ok(request, self.api_token or "", query_token=True)

        add_console_route(app)

        add_push_routes(app, self.hub, authorize=authorize if self.api_token else None)

    async def stop(self) -> None:
        await cancel_tasks(self.tasks)
        await self.dispatcher.close()
        self.hub.close()
