"""Explanations off the alert's critical path.

The desk sends every alert out at once with template text. Each raised alert is also queued
here; a worker asks the explainer (a language model when VIGIL_LLM_BASE_URL is set) for the
richer text, stores it with its outcome (source, fallback reason, failed checks, latency), and
when a model's text passed every check, sends it as a follow-up to the console and to the
patient's app inbox. When the model is slow, down or breaks a rule, nothing follows: the
template text already went out, and the reason is recorded.

The queue is bounded: under an alert storm the oldest explanation requests are dropped (and
counted), never the alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from vigil.core.events import Alert
from vigil.shell.desk.messages import TextSource
from vigil.shell.explain.explainer import Explainer, Explanation
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.templates import AlertTexts, alert_texts
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
from vigil.shell.stores.desk_store import DeskStore
from vigil.shell.stores.rows import ExplanationRow, OutboxRow

log = logging.getLogger("vigil.explaining")

QUEUE_MAX = 1000


def template_texts(emergency_number: str) -> TextSource:
    """The desk's text source: an alert's template words, in the recipient's language."""

    def texts(alert: Alert, language: str) -> AlertTexts:
        return alert_texts(alert, language=language, emergency_number=emergency_number)

    return texts


class ExplanationWorker:
    def __init__(self, explainer: Explainer, store: DeskStore, registry: Registry, metrics: Metrics, *,
                 emergency_number: str, clock: Callable[[], float], wake: Callable[[], None] | None = None,
                 concurrency: int = 4, hold_patient_texts: bool = False) -> None:
        """`hold_patient_texts` (VIGIL_APPROVE_PATIENT_TEXTS): a model's text for the patient waits
        for a clinician's approval in the ward console; the template text has gone out already."""
        self.explainer = explainer
        self.store = store
        self.registry = registry
        self.metrics = metrics
        self.emergency_number = emergency_number
        self.clock = clock
        self.wake = wake
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_MAX)
        self.concurrency = concurrency
        self.hold_patient_texts = hold_patient_texts
        self.incident_of: Callable[[str], str | None] | None = None  # the desk's: alert id -> incident id
        self.dropped = 0
        self.done = 0

    def submit(self, alert: Alert) -> None:
        """Queue one raised alert (called on the event loop, never blocks)."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            log.warning("explanation queue full: oldest request dropped (its template text already went out)")
        self.queue.put_nowait(alert)  # the desk's copy, which nothing changes

    async def run(self) -> None:
        await asyncio.gather(*(self._work() for _ in range(self.concurrency)))

    async def _work(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                await self.explain(alert)
            except Exception:
                log.exception("explanation failed", extra={"alert_id": alert.alert_id})
            finally:
                self.queue.task_done()

    async def explain(self, alert: Alert) -> list[ExplanationRow]:
        """Explain one alert in the patient's language (and English for the team). Returns the
        explanation rows it stored."""
        patient_id = alert.patient_id
        profile = self.registry.profile(patient_id)
        patient_language = profile.language if profile else "en"
        languages = list(dict.fromkeys([patient_language, "en"]))
        rows = []
        for language in languages:
            facts = facts_from_alert(alert, language=language, emergency_number=self.emergency_number)
            explanation = await self.explainer.explain(facts)
            row = ExplanationRow(
                alert.alert_id, language, explanation.facts_key, explanation.source, explanation.patient_text,
                explanation.clinician_text, explanation.fallback_reason, list(explanation.failed_checks),
                explanation.latency_s, self.clock(),
            )
            follow_ups: list[OutboxRow] = []
            held: list[OutboxRow] = []
            if explanation.source == "llm" and not explanation.fallback_reason:  # templates already went out
                # The desk's book knows the incident at once; the store only once its batch is written.
                incident_id = self.incident_of(alert.alert_id) if self.incident_of is not None else None
                incident_id = incident_id or await asyncio.to_thread(self.store.incident_id_for_alert, alert.alert_id)
                follow_ups = self._follow_ups(alert, explanation, language, language == patient_language, incident_id or "")
                if self.hold_patient_texts:
                    held = [r for r in follow_ups if r.audience == "patient"]
                    follow_ups = [r for r in follow_ups if r.audience != "patient"]
            await asyncio.to_thread(self.store.save_explanation, row, follow_ups, held)
            self.metrics.explanations.labels(explanation.source, explanation.fallback_reason or "").inc()
            if explanation.fallback_reason:
                log.info("explanation fell back to template", extra={"alert_id": row.alert_id, "language": language,
                                                                     "reason": explanation.fallback_reason})
            if follow_ups and self.wake is not None:
                self.wake()
            rows.append(row)
        self.done += 1
        return rows

    def _follow_ups(self, alert: Alert, explanation: Explanation, language: str, for_patient: bool,
                    incident_id: str) -> list[OutboxRow]:
        """App messages carrying a model's text that passed every check."""
        alert_id, patient_id = alert.alert_id, alert.patient_id
        now = self.clock()
        targets = []
        if language == "en":
            targets.append(("console", "clinician", "console", explanation.clinician_text, f"[Vigil] More detail · {patient_id} · {alert.kind}"))
        if for_patient:
            inbox = f"patient:{patient_id}"
            targets.append((inbox, "patient", inbox, explanation.patient_text, "Vigil"))
        rows = []
        for recipient_id, audience, address, body, subject in targets:
            key = "nt-" + hashlib.sha1(f"{alert_id}|explanation|{language}|{recipient_id}|app".encode()).hexdigest()[:24]
            rows.append(OutboxRow(
                key, incident_id, patient_id, "explanation", 0, recipient_id,
                "console" if audience == "clinician" else "patient", audience, "app", address, language,
                alert.severity, False, subject, body,
                {"event": "explanation", "alert_id": alert_id, "incident_id": incident_id, "source": "llm",
                 "patient_id": patient_id},
                "llm", now, now,
            ))
        return rows
