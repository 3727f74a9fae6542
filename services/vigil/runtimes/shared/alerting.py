"""The alerting service, assembled: desk, explanation worker, outbox dispatcher, push hub, API.

Both runtimes run the same thing. The embedded runtime feeds the desk from its pipeline (same
SQLite transaction); `vigil notifier` feeds it from the `vigil.alerts` topic (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from vigil.shell.desk.desk import AlertDesk, IncidentClosed
from vigil.shell.desk.explanation_worker import ExplanationWorker, template_texts
from vigil.shell.stores.desk_store import DeskStore, WriteLane
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.notify.channels.base import Channel
from vigil.shell.notify.channels.push import PushEvent, PushHub
from vigil.shell.notify.channels.registry import ChannelSettings, build_channels
from vigil.shell.notify.dispatcher import Dispatcher
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import WriteBatch
from vigil.core.access import Permission, may_read_inbox
from vigil.core.identity import Principal
from vigil.shell.identity.people import People
from vigil.shell.identity.sessions import StreamTickets
from vigil.web.access import BearerVerifier, Gate, ServiceToken, install, may_see, principal_of
from vigil.shell.stores.access_audit import AuditTrail
from vigil.web.audit_trail import add_audit_trail
from vigil.web.console import add_console_route
from vigil.web.incidents import add_incident_routes
from vigil.shell.identity.oidc import AuthorizationCodeFlow, OidcConfig, OidcProvider, ServiceTokenVerifier
from vigil.web.login import add_login_routes, session_opener
from vigil.web.oidc_routes import add_oidc_routes
from vigil.web.push_streams import add_push_routes
from vigil.web.text_reviews import add_text_review_routes
from vigil.web.ward_api import add_ward_routes
from vigil.web.ward_pages import add_ward_pages
from vigil.web.ward_source import WardSource
from vigil.web.patient_api import add_patient_routes
from vigil.web.patient_app import add_patient_app_routes
from vigil.web.patient_messages_api import add_patient_message_routes
from vigil.runtimes.shared.patient_side import PatientSide
from vigil.shell.notify.channels.app_with_web_push import AppWithWebPush
from vigil.shell.notify.web_push import WebPushSender
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.shell.trends.sql_trends import SqlTrends

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
        self.registry = registry
        # People: accounts and sessions in the same store (the embedded runtime's writes on its writer thread).
        self.people = People.from_settings(settings, engine, lane)
        # Bearer tokens: the service token here; the OpenID Connect verifier is appended when configured.
        self.bearer_verifiers: list[BearerVerifier] = [ServiceToken(settings.api_token.get_secret_value())] if settings.api_token else []
        self.oidc_flow: AuthorizationCodeFlow | None = None
        oidc = OidcConfig.from_settings(settings)
        if oidc is not None:  # single sign-on, and integrations' client-credentials tokens (docs/security.md)
            provider = OidcProvider(oidc)
            if oidc.service_clients:
                self.bearer_verifiers.append(ServiceTokenVerifier(provider))
            if oidc.redirect_uri and oidc.client_secret:
                self.oidc_flow = AuthorizationCodeFlow(provider)
        self.write = write
        self.clock = clock
        self.store = DeskStore(engine, lane)  # lane: the embedded runtime's one writer thread
        self.audit = AuditTrail(engine, lane)  # who read or did what to which patient's data (vigil.web.audit_trail)
        config = llm if llm is not None else LlmConfig.from_env()
        self.explainer = Explainer(config)
        self.llm_on = config is not None
        if channels is None:
            self.hub = PushHub()
            channels = build_channels(ChannelSettings(), hub=self.hub)
        else:
            app = channels.get("app")
            self.hub = getattr(app, "hub", None) or PushHub()
        self.patient_app = PatientAppStore(engine, lane)  # the patient app's replies, receipts, subscriptions
        web_push = None
        if settings.vapid_private_key is not None:  # Web Push to patients' phones (docs/patient-app.md)
            web_push = WebPushSender(settings.vapid_private_key.get_secret_value(), settings.vapid_subject,
                                     self.patient_app, ttl_s=settings.web_push_ttl_s, clock=clock)
            channels = {**channels, "app": AppWithWebPush(channels["app"], web_push)}  # type: ignore[arg-type]
        self.channels = channels
        self.patients = PatientSide(self, self.patient_app, SqlTrends(engine), web_push)  # trends: the runtime may swap
        self.dispatcher = Dispatcher(self.store, channels, metrics, clock=clock, poll_s=settings.notify_poll_s)
        self.worker = ExplanationWorker(self.explainer, self.store, registry, metrics,
                                        emergency_number=settings.emergency_number, clock=clock, wake=self.dispatcher.wake,
                                        hold_patient_texts=settings.approve_patient_texts)
        self.desk = AlertDesk(registry, self.store, template_texts(settings.emergency_number), metrics,
                              policy=settings.lifecycle_policy(), ward_webhook=settings.ward_webhook_url, clock=clock,
                              on_raised=self.worker.submit, wake=self.dispatcher.wake)
        self.worker.incident_of = self.desk.incident_id_for
        # The ward workspace reads the same store; the runtime adds its trends and live coverage.
        self.ward = WardSource(engine, registry, clock, grafana_url=settings.grafana_url)
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

    def act(self, ident: str, action: str, actor: str, note: str = "", outcome: str | None = None) -> dict[str, Any] | None:
        """Acknowledge or resolve an incident (or the incident of an alert id). None: unknown.

        A resolved incident raises IncidentClosed (the API answers 409): acknowledging it would
        record an acknowledgement of nothing. Acknowledging an acknowledged incident changes
        nothing and answers with it as it stands (idempotent: a double click, a retried request).
        `outcome` (core.outcomes) labels a resolution with what the clinician found."""
        incident_id = self.desk.incident_id_for(ident)
        row = None if incident_id is None else self.store.incident(incident_id)
        if row is None:
            return None
        if row["state"] == "resolved" or incident_id not in self.desk.book.incidents:  # the book: the unresolved
            raise IncidentClosed(row)
        batch = WriteBatch()
        try:
            if action == "acknowledge":
                self.desk.acknowledge(incident_id, actor, batch)
            else:
                self.desk.resolve(incident_id, actor, note, batch, outcome=outcome)
            self.write(batch)
        except Exception:
            self.desk.restore()  # the book ran ahead of a failed transaction: reload what is durable
            raise
        self.desk.committed()
        return self.store.incident(incident_id)

    # -- model texts held for a clinician's approval (VIGIL_APPROVE_PATIENT_TEXTS) ---------------

    def held_texts(self, patient_ids: frozenset[str] | None, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.held_texts(patient_ids=patient_ids, limit=limit)

    def held_text_patient(self, key: str) -> str | None:
        row = self.store.held_text(key)
        return None if row is None else row["patient_id"]

    def review_text(self, key: str, approve: bool, principal: Principal) -> bool:
        """Approve (send) or refuse a held text; False when it was decided already or is no longer true."""
        decided = self.store.decide_held(key, approve, {"by": principal.subject, "by_name": principal.name},
                                         self.clock())
        if decided:
            log.info("patient text %s", "approved" if approve else "refused", extra={"key": key, "by": principal.subject})
        return decided

    def wake(self) -> None:
        self.dispatcher.wake()

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

    def ward_of(self, patient_id: str) -> str | None:
        """The roster's ward of a patient; a patient not in the roster is in no ward."""
        profile = self.registry.profile(patient_id)
        return profile.ward if profile is not None else None

    def patients_of_wards(self, wards: Iterable[str]) -> frozenset[str]:
        wards = set(wards)
        return frozenset(p.patient_id for p in self.registry.patients() if p.ward in wards)

    def gate(self, tickets: StreamTickets | None = None) -> Gate:
        return Gate(self.people.sessions, tickets or self.people.tickets, self.ward_of, self.patients_of_wards,
                    self.bearer_verifiers, self.settings.cookie_secure)

    def add_routes(self, app: web.Application) -> None:
        """Authentication on every route of `app`, the login routes, the incident API, the
        console, the ward workspace and the push streams (a person reads only their own inbox)."""
        install(app, self.gate())
        add_audit_trail(app, self.audit)  # every route of the app after authentication, the operator API's included
        add_login_routes(app, self.people)
        if self.oidc_flow is not None:
            add_oidc_routes(app, self.oidc_flow, session_opener(self.people), after_login="/console",
                            secure_cookie=self.settings.cookie_secure is not False)
        add_incident_routes(app, self)
        add_text_review_routes(app, self)
        add_console_route(app)
        add_ward_routes(app, self.ward)
        add_ward_pages(app)
        add_patient_app_routes(app)
        add_patient_routes(app, self.patients)
        add_patient_message_routes(app, self.patients)

        async def own_inbox(request: web.Request, inbox: str) -> bool:
            return may_read_inbox(principal_of(request), inbox)

        def visible(request: web.Request, event: PushEvent) -> bool:
            if event.inbox != "console":
                return True  # a person's own inbox holds only what was meant for them
            patient_id = event.payload.get("patient_id") or (event.payload.get("incident") or {}).get("patient_id")
            return may_see(request, Permission.READ_INCIDENTS, patient_id)

        add_push_routes(app, self.hub, authorize=own_inbox, visible=visible)

    async def stop(self) -> None:
        await cancel_tasks(self.tasks)
        await self.dispatcher.close()
        self.hub.close()
