"""`vigil explain-eval` and `vigil explain`: the explainer over simulated alerts, and over one alert.

The alerts come from the real clinical core: a simulated cohort replayed through the same
Pipeline the processor runs (`vigil_models.replay`, with the ONNX model stage, so model alerts
carry their risk and contributors), offline, without MQTT or a database. Every raised alert is
explained in English; alerts of patients at an odd index in the cohort are explained in
Simplified Chinese as well. Each explanation is two messages (patient, clinician).

Figures:
- `passed_checks`: share of messages whose first-choice text (the template's, or the model's
  before any fallback) passed every check. A model that timed out, errored or answered
  malformed JSON produced no text for either audience: those messages count as not passing.
- `unsupported_number_rate_delivered`: numbers not in the facts / numbers, over the texts
  actually delivered (after fallback). The target is 0 whatever the model does.
- reading grades of the delivered patient texts, per language (English: Flesch-Kincaid;
  Chinese: the sentence-length proxy in checks.py); `max_reading_grade_patient_delivered`
  is the largest over both.
- latency of `explain()` (p50/p99), fallbacks and their reasons, template time per alert.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from vigil.shell.explain.checks import check_text, quantities, reading_grade, unsupported_numbers
from vigil.shell.explain.explainer import Explainer, Explanation, judge_part
from vigil.shell.explain.facts import AlertFacts, facts_from_alert
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.explain.templates import clinician_text, patient_text
from vigil.shell.observability.percentile import percentile

CONCURRENCY = 8  # explanations in flight at once against a model server


def simulated_alerts(patients: int, seed: int, hours: float = 12.0) -> list[tuple[int, dict[str, Any]]]:
    """(patient index in the cohort, Alert.as_dict() with the patient's SpO2 scale and oxygen)
    for every alert the core raised over `hours` of a simulated cohort."""
    from vigil_models.replay import make_plan, replay
    from vigil.shell.scoring.loading import model_stage_for

    plan = make_plan(seed, patients, hours / 24.0)
    stage, _ = model_stage_for(True, None)  # rules alone if the models cannot load
    result = replay(plan, stage, keep_readings=False)
    index = {p.patient_id: i for i, p in enumerate(plan.patients)}
    traits = {p.patient_id: p.traits for p in plan.patients}
    out = []
    for alert in result.pipeline.totals.raised:
        row = alert.as_dict()
        t = traits[alert.patient_id]
        # The clinical context the registry holds for this patient (what the lead's CLI loads too).
        row.setdefault("spo2_scale", t.spo2_scale)
        row.setdefault("on_oxygen", t.on_oxygen)
        out.append((index[alert.patient_id], row))
    return out


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    return {"min": ordered[0], "median": round(statistics.median(ordered), 2),
            "p90": percentile(ordered, 0.9), "max": ordered[-1]}


def template_timing(alerts: list[Mapping[str, Any]], rounds: int = 20) -> dict[str, float]:
    """Milliseconds to build the facts and both template texts for one alert (English):
    mean, p50 and p99 over `rounds` passes, after one warm-up pass."""
    explainer = Explainer(None)
    for alert in alerts:
        explainer.template(facts_from_alert(alert))
    samples = []
    for _ in range(rounds):
        for alert in alerts:
            started = time.perf_counter()
            explainer.template(facts_from_alert(alert))
            samples.append((time.perf_counter() - started) * 1000)
    if not samples:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0}
    return {"mean": round(statistics.fmean(samples), 4), "p50": round(percentile(samples, 0.5) or 0.0, 4),
            "p99": round(percentile(samples, 0.99) or 0.0, 4)}


async def _explain_all(explainer: Explainer, facts: list[AlertFacts]) -> list[tuple[Explanation, float]]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(f: AlertFacts) -> tuple[Explanation, float]:
        async with gate:
            started = time.perf_counter()
            explanation = await explainer.explain(f)
            return explanation, time.perf_counter() - started

    try:
        return await asyncio.gather(*(one(f) for f in facts))
    finally:
        await explainer.aclose()


def run_explain_eval(patients: int = 12, seed: int = 7, config: LlmConfig | None = None, *,
                     hours: float = 12.0, emergency_number: str = "999") -> dict[str, Any]:
    """Explain every alert of a simulated cohort and report what was checked and delivered."""
    alerts = simulated_alerts(patients, seed, hours)
    facts: list[AlertFacts] = []
    for index, alert in alerts:
        for language in ("en", "zh") if index % 2 else ("en",):
            facts.append(facts_from_alert(alert, language=language, emergency_number=emergency_number))
    explainer = Explainer(config)
    results = asyncio.run(_explain_all(explainer, facts))

    passed = messages = 0
    failed_checks: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    numbers = unsupported = delivered_failures = 0
    grades: dict[str, list[float]] = {"en": [], "zh": []}
    for f, (explanation, _) in zip(facts, results):
        messages += 2
        if explanation.fallback_reason is None:
            passed += 2  # the first choice was delivered, so it passed every check
        elif explanation.failed_checks:
            failed_audiences = {name.split(":", 1)[0] for name in explanation.failed_checks}
            passed += 2 - len(failed_audiences)
        failed_checks.update(explanation.failed_checks)
        if explanation.fallback_reason:
            reasons[explanation.fallback_reason] += 1
        for audience, text in (("patient", explanation.patient_text), ("clinician", explanation.clinician_text)):
            numbers += len(quantities(text))
            unsupported += len(unsupported_numbers(text, f))
            delivered_failures += bool(check_text(text, f, audience))  # type: ignore[arg-type]
        grades[f.language].append(reading_grade(explanation.patient_text, f.language))
    latencies = [latency for _, latency in results]
    template_ms = template_timing([a for _, a in alerts])
    all_grades = grades["en"] + grades["zh"]
    return {
        "patients": patients,
        "seed": seed,
        "hours": hours,
        "backend": "template" if explainer.config is None else f"llm:{explainer.config.model}",
        "alerts": len(alerts),
        "alert_kinds": dict(Counter(a["kind"] for _, a in alerts)),
        "explanations": len(facts),
        "languages": dict(Counter(f.language for f in facts)),
        "messages": messages,
        "passed_checks": round(passed / messages, 4) if messages else None,
        "failed_checks": dict(failed_checks),
        "fallbacks": sum(reasons.values()),
        "fallback_rate": round(sum(reasons.values()) / len(facts), 4) if facts else None,
        "fallback_reasons": dict(reasons),
        "cache_hits": explainer.stats.cache_hits,
        "delivered_failing_checks": delivered_failures,
        "numbers_delivered": numbers,
        "unsupported_numbers_delivered": unsupported,
        "unsupported_number_rate_delivered": round(unsupported / numbers, 6) if numbers else 0.0,
        "reading_grade_patient_delivered": {lang: _spread(values) for lang, values in grades.items()},
        "max_reading_grade_patient_delivered": max(all_grades) if all_grades else None,
        "latency_ms": {"p50": round((percentile(latencies, 0.5) or 0) * 1000, 3),
                       "p99": round((percentile(latencies, 0.99) or 0) * 1000, 3),
                       "max": round(max(latencies, default=0) * 1000, 3)},
        "template_ms_per_alert": template_ms["mean"],
        "template_ms_per_alert_p50": template_ms["p50"],
        "template_ms_per_alert_p99": template_ms["p99"],
    }


def render_eval(report: Mapping[str, Any]) -> str:
    """The report for a person to read."""
    r = report
    g = r["reading_grade_patient_delivered"]
    lines = [
        f"explain-eval · {r['patients']} patients · seed {r['seed']} · {r['hours']:g} h simulated · backend {r['backend']}",
        f"  alerts {r['alerts']} ({', '.join(f'{k} {v}' for k, v in sorted(r['alert_kinds'].items()))})",
        f"  explanations {r['explanations']} ({', '.join(f'{k} {v}' for k, v in r['languages'].items())}; zh for patients at odd index)",
        f"  messages {r['messages']} · passed every check (before fallback) {r['passed_checks']:.1%}",
        f"  fallbacks {r['fallbacks']} ({(r['fallback_rate'] or 0):.1%})"
        + (": " + ", ".join(f"{k} {v}" for k, v in sorted(r["fallback_reasons"].items())) if r["fallback_reasons"] else ""),
    ]
    if r["failed_checks"]:
        lines.append("  failed checks: " + ", ".join(f"{k} {v}" for k, v in sorted(r["failed_checks"].items())))
    lines += [
        f"  delivered: unsupported numbers {r['unsupported_numbers_delivered']}/{r['numbers_delivered']}"
        f" (rate {r['unsupported_number_rate_delivered']:.4f}) · texts failing a check {r['delivered_failing_checks']}",
        "  patient reading grade delivered: " + " · ".join(
            f"{lang} min {s['min']} median {s['median']} p90 {s['p90']} max {s['max']}" for lang, s in g.items() if s["max"] is not None),
        f"  latency p50 {r['latency_ms']['p50']} ms · p99 {r['latency_ms']['p99']} ms · max {r['latency_ms']['max']} ms",
        f"  template path {r['template_ms_per_alert']} ms per alert (mean; p50 {r['template_ms_per_alert_p50']} ms,"
        f" p99 {r['template_ms_per_alert_p99']} ms)",
    ]
    return "\n".join(lines)


def report_json(report: Mapping[str, Any]) -> str:
    """One line of JSON: the last line `vigil explain-eval --json` prints."""
    return json.dumps(report, separators=(",", ":"), ensure_ascii=False)


def explain_alert_command(alert: Mapping[str, Any], config: LlmConfig | None, language: str = "en",
                          emergency_number: str = "999") -> str:
    """The text `vigil explain --alert-id ID` prints: the template texts, then the model's texts
    and what happened to them when a model is configured. Call from synchronous code."""
    facts = facts_from_alert(alert, language=language, emergency_number=emergency_number)
    explainer = Explainer(config)
    template = explainer.template(facts)
    lines = [
        f"alert {alert.get('alert_id', '?')} · {facts.kind} · {facts.severity} · {facts.category} · language {language}",
        f"facts key {template.facts_key} (the model is sent the facts only: {len(facts.as_json())} bytes, no identifiers)",
        "",
        "template",
        f"  patient:   {template.patient_text}",
        f"  clinician: {template.clinician_text}",
    ]
    if explainer.config is None:
        lines += ["", "model: not configured (set VIGIL_LLM_BASE_URL to use one)"]
        return "\n".join(lines)

    async def ask() -> Explanation:
        try:
            return await explainer.explain(facts)
        finally:
            await explainer.aclose()

    result = asyncio.run(ask())
    outcome = "delivered" if result.source == "llm" else f"fell back to template: {result.fallback_reason}"
    lines += ["", f"model {explainer.config.model} at {explainer.config.base_url} · {result.latency_s * 1000:.0f} ms · {outcome}"]
    if result.failed_checks:
        lines.append(f"  failed checks: {', '.join(result.failed_checks)}")
    if result.source == "llm":
        lines += [f"  patient:   {result.patient_text}", f"  clinician: {result.clinician_text}"]
    elif result.rejected_patient_text is not None:
        lines += [f"  refused patient text:   {result.rejected_patient_text}",
                  f"  refused clinician text: {result.rejected_clinician_text}"]
    return "\n".join(lines)


# -- `vigil explain-eval --texts FILE`: judge model answers given as text -------------------------

def _facts_for(row: Mapping[str, Any]) -> AlertFacts:
    from vigil.shell.explain.samples import sample_alert

    alert = dict(row["alert"]) if isinstance(row.get("alert"), Mapping) else sample_alert(str(row["kind"]))
    if row.get("severity"):
        alert["severity"] = row["severity"]
    return facts_from_alert(alert, language=str(row.get("language", "en")),
                            emergency_number=str(row.get("emergency_number", "999")))


def judge_texts(rows: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One result per model text, and the summary. A row is either one model answer
    ({kind or alert, severity?, language, what_changed, clinician_summary}: used whole or not at
    all, as the explainer does) or one part ({kind, language, audience, text}, the corpus format)."""
    results: list[dict[str, Any]] = []
    for row in rows:
        facts = _facts_for(row)
        if "text" in row:
            parts = {str(row["audience"]): str(row["text"])}
        else:
            parts = {"patient": str(row.get("what_changed", "")), "clinician": str(row.get("clinician_summary", ""))}
        judged = {audience: judge_part(facts, text, audience) for audience, text in parts.items()}
        answer_ok = all(not failed for _, failed in judged.values())
        for audience, text in parts.items():
            delivered_text, failed = judged[audience]
            if not answer_ok and not failed:  # the other part failed: both fall back
                delivered_text = patient_text(facts) if audience == "patient" else clinician_text(facts)
            results.append({
                "kind": facts.kind, "severity": facts.severity, "language": facts.language, "audience": audience,
                "class": row.get("class"), "model_text": text, "delivered_text": delivered_text,
                "outcome": "delivered" if answer_ok else "fell_back",
                "reasons": [f"{a}:{n}" for a, (_, fs) in judged.items() for n in fs],
            })
    summary: dict[str, Any] = {"model_texts": len(results), "delivered": sum(r["outcome"] == "delivered" for r in results)}
    for audience in ("patient", "clinician"):
        mine = [r for r in results if r["audience"] == audience]
        summary[f"delivered_share_{audience}"] = round(sum(r["outcome"] == "delivered" for r in mine) / len(mine), 4) if mine else None
    by_class: dict[str, list[int]] = {}
    for r in results:
        if r["class"]:
            counts = by_class.setdefault(str(r["class"]), [0, 0])
            counts[0] += r["outcome"] == "delivered"
            counts[1] += 1
    if by_class:
        summary["delivered_by_class"] = {c: f"{d}/{n}" for c, (d, n) in sorted(by_class.items())}
    summary["reasons"] = dict(Counter(reason.split(":", 1)[1] for r in results for reason in r["reasons"]
                                      if reason.startswith(r["audience"] + ":")).most_common())
    return results, summary
