"""The explainer: template text at once, model text when it is ready, checked, and never worse.

`Explainer.template(facts)` is synchronous and fast (well under a millisecond): the alert goes
out with it. `await Explainer.explain(facts)` asks the model when one is configured, under a
hard timeout, checks both texts, and returns the template text with the reason whenever the
model is slow, down, malformed or breaks a rule. It never raises.

Safety by construction: the model writes only what changed (`what_changed`, for the patient)
and a summary of the data (`clinician_summary`). What the patient must do is Vigil's frame,
verbatim from the template (`templates.patient_frame`), placed after the model's words; the
clinician reads Vigil's data and severity first and the model's summary after. The model's parts
are checked on their own (`safety.check_part`: no instruction, dismissal, reassurance, contact,
diagnosis or unsupported number) and the composed texts again (`checks.check_text`).

A model answer is used whole or not at all: if either part fails a check, both texts come from
the template, so the patient and the clinician never read two different stories.

Answers are cached by `facts.key()`, least recently used first out. Transient failures
(timeout, transport errors) are not cached, so the next alert with the same facts tries again;
answers that were checked (delivered, or refused by a check) are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Literal

import openai

from vigil.shell.explain.checks import MAX_READING_GRADE, check_text, reading_grade, wrong_language
from vigil.shell.explain.facts import AlertFacts
from vigil.shell.explain.llm import BadOutput, LlmBackend, LlmConfig
from vigil.shell.explain.safety import check_part
from vigil.shell.explain.templates import clinician_text, compose_clinician, compose_patient, patient_text

log = logging.getLogger("vigil.explain")


@dataclass(frozen=True, slots=True)
class Explanation:
    patient_text: str
    clinician_text: str
    language: str
    source: Literal["template", "llm"]
    fallback_reason: str | None  # None when the source is what was asked for
    failed_checks: list[str] = field(default_factory=list)  # "patient:medication", ...
    latency_s: float = 0.0
    facts_key: str = ""
    cached: bool = False
    # The model's parts when they were refused, kept for the eval and `vigil explain`; never delivered.
    rejected_patient_text: str | None = None
    rejected_clinician_text: str | None = None
    # The model's parts as it wrote them (delivered or not), for the record and the eval.
    model_patient_part: str | None = None
    model_clinician_part: str | None = None


@dataclass(slots=True)
class ExplainerStats:
    explanations: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)


def part_failures(facts: AlertFacts, part: str, audience: str) -> list[str]:
    """The checks the model's own part fails: the contract, its language and (patients) its grade."""
    failed = check_part(part, facts, audience)  # type: ignore[arg-type]
    if part.strip() and wrong_language(part, facts.language, audience):  # type: ignore[arg-type]
        failed.append("language")
    if audience == "patient" and part.strip() and reading_grade(part, facts.language) > MAX_READING_GRADE:
        failed.append("reading_grade")
    return failed


def candidate_failures(facts: AlertFacts, what_changed: str, summary: str) -> list[str]:
    """Every failed check of a model answer, as audience:check: its parts on their own, then the
    texts composed with Vigil's frame."""
    return [f"{audience}:{name}" for audience, part in (("patient", what_changed), ("clinician", summary))
            for name in judge_part(facts, part, audience)[1]]


def judge_part(facts: AlertFacts, part: str, audience: str) -> tuple[str, list[str]]:
    """(the text that would be delivered, the failed checks) for one model part on its own: the
    part inside Vigil's frame when it passes, else the template. For the red-team corpus and
    `vigil explain-eval --texts`."""
    composed = compose_patient(part, facts) if audience == "patient" else compose_clinician(part, facts)
    failed = part_failures(facts, part, audience)
    failed += [n for n in check_text(composed, facts, audience) if n not in failed]  # type: ignore[arg-type]
    if failed:
        return (patient_text(facts) if audience == "patient" else clinician_text(facts)), failed
    return composed, []


def compose(facts: AlertFacts, what_changed: str, summary: str) -> tuple[str, str]:
    """The texts delivered for a model answer that passed: the model's words inside Vigil's frame."""
    return compose_patient(what_changed, facts), compose_clinician(summary, facts)


class Explainer:
    def __init__(self, config: LlmConfig | None = None, cache_size: int = 1024) -> None:
        self.config = config if config is not None and config.enabled else None
        self.backend = LlmBackend(self.config) if self.config is not None else None
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Explanation] = OrderedDict()
        self.stats = ExplainerStats()

    def template(self, facts: AlertFacts) -> Explanation:
        """The deterministic texts. Fast and synchronous: safe on the alert's critical path."""
        started = time.perf_counter()
        return Explanation(patient_text(facts), clinician_text(facts), facts.language, "template", None,
                           latency_s=time.perf_counter() - started, facts_key=facts.key())

    async def explain(self, facts: AlertFacts) -> Explanation:
        """The best explanation available within the timeout. Never raises."""
        started = time.perf_counter()
        self.stats.explanations += 1
        if self.backend is None:
            return self.template(facts)
        key = facts.key()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return replace(hit, cached=True, latency_s=time.perf_counter() - started)
        try:
            explanation, cacheable = await self._ask(facts, key, started)
        except Exception as exc:  # noqa: BLE001 - a bug in checking must not cost the patient a message
            explanation, cacheable = self._fallback(facts, key, started, f"error:{type(exc).__name__}", detail=str(exc)[:200]), False
        if cacheable:
            self._cache[key] = explanation
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return explanation

    async def _ask(self, facts: AlertFacts, key: str, started: float) -> tuple[Explanation, bool]:
        assert self.backend is not None and self.config is not None
        self.stats.llm_calls += 1
        try:
            async with asyncio.timeout(self.config.timeout_s):
                patient, clinician = await self.backend.complete(facts)
        except (TimeoutError, openai.APITimeoutError):
            return self._fallback(facts, key, started, "timeout"), False
        except BadOutput as exc:
            return self._fallback(facts, key, started, "bad_output", detail=str(exc)), True
        except Exception as exc:  # noqa: BLE001 - any failure of the model means the template
            return self._fallback(facts, key, started, f"error:{type(exc).__name__}", detail=str(exc)[:200]), False
        failed = candidate_failures(facts, patient, clinician)
        if failed:
            reason = "check:" + failed[0].split(":", 1)[1]
            fallback = self._fallback(facts, key, started, reason, failed=failed)
            return replace(fallback, rejected_patient_text=patient, rejected_clinician_text=clinician,
                           model_patient_part=patient, model_clinician_part=clinician), True
        patient_delivered, clinician_delivered = compose(facts, patient, clinician)
        return Explanation(patient_delivered, clinician_delivered, facts.language, "llm", None, [],
                           time.perf_counter() - started, key, model_patient_part=patient,
                           model_clinician_part=clinician), True

    def _fallback(self, facts: AlertFacts, key: str, started: float, reason: str, *,
                  failed: list[str] | None = None, detail: str = "") -> Explanation:
        self.stats.fallbacks[reason] = self.stats.fallbacks.get(reason, 0) + 1
        latency = time.perf_counter() - started
        log.warning("explanation fell back to template", extra={
            "reason": reason, "failed_checks": ",".join(failed or []), "detail": detail, "facts_key": key,
            "kind": facts.kind, "severity": facts.severity, "language": facts.language, "latency_s": round(latency, 3),
        })
        return Explanation(patient_text(facts), clinician_text(facts), facts.language, "template", reason,
                           list(failed or []), latency, key)

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()
