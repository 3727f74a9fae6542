"""The patient app's side of the alerting service: what its API asks (vigil.web.patient_api and
vigil.web.patient_messages_api), assembled from the desk, the stores, the trends and Web Push.

One object for both runtimes: the embedded one reads trends from its SQLite rollups; the notifier
(the scaled API) from InfluxDB when configured (`trends` is set by the runtime).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vigil.core.identity import Principal
from vigil.core.incident import Incident
from vigil.shell.notify.channels.base import Delivery
from vigil.shell.notify.web_push import WebPushSender
from vigil.shell.stores.patient_app_store import PatientAppStore
from vigil.shell.stores.sql import WriteBatch
from vigil.shell.trends.model import TrendStore

log = logging.getLogger("vigil.patient_app")
CARE_SUBJECT = {"en": "Message from your care team", "zh": "护理团队的消息"}


class PatientSide:
    """`alerting`: the AlertingService that owns this (typed loosely: it imports this module)."""

    def __init__(self, alerting: Any, store: PatientAppStore, trends: TrendStore | None,
                 web_push: WebPushSender | None) -> None:
        self.alerting = alerting
        self.registry, self.store, self.patient_app = alerting.registry, alerting.store, store
        self.trends, self.web_push = trends, web_push
        self.emergency_number = alerting.settings.emergency_number

    def clock(self) -> float:
        return self.alerting.clock()

    def push_key(self) -> str | None:
        return None if self.web_push is None else self.web_push.public_key()

    def open_incidents_of(self, patient_id: str) -> list[Incident]:
        return [i for i in self.alerting.desk.book.incidents.values() if i.patient_id == patient_id]

    def answer(self, patient_id: str, incident_id: str, answer: str, principal: Principal) -> dict[str, Any]:
        """Keep the answer; put it on the incident's timeline (its console message goes with it). An
        incident already resolved has no timeline to join: the console is told directly, so that an
        "I need help" is never lost."""
        now = self.clock()
        self.patient_app.record_reply(patient_id, incident_id, None, answer, now, principal.subject)
        desk, batch = self.alerting.desk, WriteBatch()
        try:
            events = desk.patient_answered(incident_id, answer, "patient", batch, now)
            if batch:
                self.alerting.write(batch)
        except Exception:
            desk.restore()
            raise
        desk.committed()
        if not events:
            self._tell_console(patient_id, incident_id, answer, now)
        log.info("patient answered", extra={"patient_id": patient_id, "incident_id": incident_id, "answer": answer})
        return {"incident_id": incident_id, "answer": answer, "t": now, "on_timeline": bool(events)}

    def _tell_console(self, patient_id: str, incident_id: str, answer: str, now: float) -> None:
        kind = "patient_help" if answer == "help" else "patient_ok"
        headline = "PATIENT ASKS FOR HELP" if answer == "help" else "Patient answered: I'm OK"
        self.alerting.hub.publish(Delivery(
            key=f"answer-{incident_id}-{now:.3f}", channel="app", recipient_id="console", address="console",
            audience="clinician", subject=f"[Vigil] {headline} · {patient_id}",
            body=f"{headline}: {patient_id} (incident {incident_id}, already resolved).",
            payload={"event": kind, "t": now, "actor": "patient",
                     "incident": {"incident_id": incident_id, "patient_id": patient_id, "state": "resolved"}},
            critical=answer == "help"))

    async def send_care_message(self, patient_id: str, principal: Principal, body: str) -> dict[str, Any]:
        """Keep the message, then deliver it to the patient's app inbox (and phone, with Web Push)."""
        row = await asyncio.to_thread(self.patient_app.add_care_message, patient_id, principal.subject,
                                      principal.name, body, self.clock())
        profile = self.registry.profile(patient_id)
        language = profile.language if profile is not None else "en"
        inbox = f"patient:{patient_id}"
        await self.alerting.channels["app"].send(Delivery(
            key=row["key"], channel="app", recipient_id=inbox, address=inbox, audience="patient",
            subject=CARE_SUBJECT.get(language, CARE_SUBJECT["en"]), body=body,
            payload={"event": "care_message", "from": principal.name}))
        return row
