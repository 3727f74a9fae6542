"""One patient's page: vitals over a span as min–max bands, NEWS2 with its breakdown, model risk
and its drivers, alerts and incidents on the same time axis, and what was delivered.

Bands, not averages: each bucket carries the min and max of every reading in it (a dip to 85 %
inside an hour whose mean is 94 % stays visible). The NEWS2 breakdown is recomputed (core.news2)
from the latest value of each vital the trend store holds, and lists what it could not score: the
stored score says whether it was partial; the breakdown shows why.

Patient replies and read receipts come from the patient app's tables (shell/stores/patient_answers.py);
a store an older Vigil made, not yet upgraded, answers empty lists and `replies_source` says why.
"""

from __future__ import annotations

from typing import Any

from vigil.core.news2 import score_news2_values
from vigil.shell.stores.patient_answers import patient_answers
from vigil.shell.stores.ward_queries import delivered_texts, patient_alerts, patient_incidents
from vigil.web.ward_rows import buckets_json, coverage_for, latest_json
from vigil.web.ward_source import WardSource

# span -> (seconds, bucket step): at most a few hundred buckets per chart
SPANS: dict[str, tuple[int, int]] = {"1h": (3600, 60), "24h": (86400, 600), "7d": (7 * 86400, 3600)}
CHART_VITALS = ("hr", "spo2", "rr", "temp", "sbp", "news2", "risk")


def news2_breakdown(latest: dict[str, dict[str, Any]], spo2_scale: int) -> dict[str, Any] | None:
    """The stored latest NEWS2 (score, partial, age) and the points of each parameter, recomputed
    from the latest vitals; parameters never observed (air or oxygen, consciousness without a
    device that reports them) are listed as missing."""
    stored = latest.get("news2")
    if stored is None:
        return None
    value = {v: (latest.get(v) or {}).get("value") for v in ("rr", "spo2", "sbp", "hr", "temp")}
    score = score_news2_values(value["rr"], value["spo2"], None, value["sbp"], value["hr"], None, value["temp"],
                               2 if spo2_scale == 2 else 1)
    return {"score": stored["value"], "partial": bool(stored.get("partial")), "t": stored["t"],
            "age_s": stored["age_s"], "parameters": score.parameters, "missing": list(score.missing),
            "recomputed_score": score.score, "band": score.band}


def _risk(latest: dict[str, dict[str, Any]], alerts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest model risk, with the drivers of the newest alert that named any."""
    risk = latest.get("risk")
    explained = next((a for a in reversed(alerts) if a.get("contributors")), None)
    if risk is None and explained is None:
        return None
    return {"value": None if risk is None else risk["value"], "t": None if risk is None else risk["t"],
            "age_s": None if risk is None else risk["age_s"],
            "drivers": [] if explained is None else explained["contributors"],
            "drivers_alert_id": None if explained is None else explained["alert_id"],
            "model_version": None if explained is None else explained.get("model_version")}


def _series(source: WardSource, patient_id: str, start: float, now: float, step: int) -> dict[str, list[list[Any]]]:
    if source.trends is None:
        return {v: [] for v in CHART_VITALS}
    return {v: buckets_json(source.trends.series(patient_id, v, start, now, step)) for v in CHART_VITALS}


def patient_page(source: WardSource, patient_id: str, span: str, now: float,
                 live: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Everything the patient page draws, for `span` (a key of SPANS) ending `now`."""
    seconds, step = SPANS[span]
    start = now - seconds
    profile = source.registry.profile(patient_id)
    latest = latest_json(source.trends.latest([patient_id]).get(patient_id) if source.trends else None, now)
    alerts = patient_alerts(source.engine, patient_id, start)
    scale = profile.clinical.spo2_scale if profile is not None else 1
    replies, reads, replies_source = patient_answers(source.engine, patient_id, start)
    return {
        "patient": {"patient_id": patient_id, "name": profile.display_name if profile else None,
                    "ward": profile.ward if profile else None, "language": profile.language if profile else None},
        "now": now, "span": span, "start": start, "step": step,
        "series": _series(source, patient_id, start, now, step),
        "latest": latest,
        "news2": news2_breakdown(latest, scale),
        "risk": _risk(latest, alerts),
        "monitoring": coverage_for(source, [patient_id], live)[patient_id],
        "alerts": alerts,
        "incidents": patient_incidents(source.engine, patient_id, start),
        "delivered": delivered_texts(source.engine, patient_id, start),
        "patient_replies": replies, "read_receipts": reads, "replies_source": replies_source,
        "grafana_url": source.grafana_link(patient_id),
    }
