"""The ward overview's rows: one per patient, sickest first (core.acuity).

Each row joins what three sources know of a patient: the trend store (latest value of each vital
with its age, the last hour's sparklines as min–max buckets), the desk (the open incident, most
severe first), and coverage (monitored or not, and why). The browser keys rows by `patient_id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vigil.core.acuity import acuity_key
from vigil.core.events import SEVERITY_RANK
from vigil.shell.stores.ward_queries import open_incidents, open_technical_alerts
from vigil.shell.trends.model import Bucket, PatientLatest
from vigil.web.ward_source import WardSource


def latest_json(latest: PatientLatest | None, now: float, with_t: bool = True) -> dict[str, dict[str, Any]]:
    """Each vital's newest value and its age in seconds (and when, `with_t`; the overview leaves it out)."""
    if latest is None:
        return {}
    shown: dict[str, dict[str, Any]] = {}
    for vital, value in latest.vitals.items():
        entry: dict[str, Any] = {"value": round(value.value, 2), "age_s": round(now - value.t)}
        if with_t:
            entry["t"] = value.t
        if value.partial is not None:
            entry["partial"] = value.partial
        shown[vital] = entry
    return shown


def buckets_json(buckets: Iterable[Bucket]) -> list[list[Any]]:
    """[t, min, max, mean, count(, partial)] per bucket: compact, and the chart's own order."""
    out: list[list[Any]] = []
    for b in buckets:
        row: list[Any] = [b.t, round(b.min, 3), round(b.max, 3), round(b.mean, 3), b.count]
        if b.partial is not None:
            row.append(b.partial)
        out.append(row)
    return out


SHOWN_SPARKLINES = ("hr", "spo2")  # what the overview draws; the others stay off the wire


def sparkline_json(buckets: Iterable[Bucket]) -> list[list[float]]:
    """[t, min, max] per bucket: the overview's band, nothing it does not draw (1,000 rows go out; not
    rounded: 48,000 round() calls cost more server time than the bytes they save)."""
    return [[b.t, b.min, b.max] for b in buckets]


def _worst_incident(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per patient, the unresolved incident to show: most severe, then open before acknowledged."""
    worst: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = (SEVERITY_RANK.get(row["severity"], 0), row["state"] == "open", row["opened_t"])
        current = worst.get(row["patient_id"])
        if current is None or key > current["_key"]:
            worst[row["patient_id"]] = {**row, "_key": key}
    return {p: {k: v for k, v in row.items() if k != "_key"} for p, row in worst.items()}


def live_coverage(source: WardSource, patient_ids: list[str], now: float) -> dict[str, dict[str, Any]] | None:
    """The runtime's live verdicts (None: it has none). Call on the event loop: the monitors live there."""
    return None if source.coverage_of is None else source.coverage_of(patient_ids, now)


def coverage_for(source: WardSource, patient_ids: list[str], live: dict[str, dict[str, Any]] | None
                 ) -> dict[str, dict[str, Any]]:
    """Each patient's monitoring status: the runtime's live verdict where it has one (`live`),
    overruled by an open technical alert (the store's word, in both runtimes)."""
    shown = dict(live or {})
    for alert in open_technical_alerts(source.engine, patient_ids):
        shown[alert["patient_id"]] = {"state": "not_monitored", "cause": alert["kind"], "words": alert["rule"],
                                      "since": alert["raised_t"]}
    return {p: shown.get(p, {"state": "monitored"} if live is None else
                         {"state": "unknown", "words": "nothing heard from the monitor since Vigil started"})
            for p in patient_ids}


def _incident_json(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: row[k] for k in ("incident_id", "severity", "state", "category", "opened_t", "escalation_level",
                                "acknowledged_by", "acknowledged_t", "alerts")}


def _matches(row: dict[str, Any], severity: str | None, unacknowledged: bool) -> bool:
    incident = row["incident"]
    if unacknowledged and (incident is None or incident["state"] != "open"):
        return False
    if severity is not None:
        return incident is not None and SEVERITY_RANK.get(incident["severity"], 0) >= SEVERITY_RANK[severity]
    return True


def ward_rows(source: WardSource, patient_ids: list[str], now: float, live: dict[str, dict[str, Any]] | None, *,
              severity: str | None = None, unacknowledged: bool = False) -> list[dict[str, Any]]:
    """The overview, filtered (severity: at least this; unacknowledged: an open incident nobody
    has acknowledged) and sorted sickest first."""
    incidents = _worst_incident(open_incidents(source.engine, patient_ids))
    if severity is not None or unacknowledged:  # the filters are the incidents': ask the trends for fewer
        patient_ids = [p for p in patient_ids if _matches({"incident": _incident_json(incidents.get(p))},
                                                          severity, unacknowledged)]
    trends = {row.patient_id: row for row in source.trends.ward(patient_ids, now, SHOWN_SPARKLINES)} if source.trends else {}
    coverage = coverage_for(source, patient_ids, live)
    rows = []
    for patient_id in patient_ids:
        trend = trends.get(patient_id)
        profile = source.registry.profile(patient_id)
        row = {"patient_id": patient_id, "name": profile.display_name if profile else None,
               "ward": profile.ward if profile else None,
               "latest": latest_json(trend.latest if trend else None, now, with_t=False),
               "sparklines": {v: sparkline_json(trend.sparklines.get(v, ())) for v in SHOWN_SPARKLINES} if trend else {},
               "monitoring": coverage[patient_id], "incident": _incident_json(incidents.get(patient_id))}
        if _matches(row, severity, unacknowledged):
            rows.append(row)
    rows.sort(key=_acuity)
    return rows


def _acuity(row: dict[str, Any]) -> tuple[float, int, float, float]:
    incident = row["incident"] or {}
    latest = row["latest"]
    return acuity_key(incident.get("severity"), incident.get("state"), (latest.get("news2") or {}).get("value"),
                      (latest.get("risk") or {}).get("value"), row["monitoring"]["state"] != "not_monitored")
