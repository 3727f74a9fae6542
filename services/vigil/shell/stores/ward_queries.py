"""What the ward workspace reads from the SQL store besides trends: open incidents, and one
patient's alerts, incidents and delivered texts over a window.

The same tables in both runtimes (SQLite embedded; PostgreSQL behind `vigil notifier`, where the
processor writes alert rows too). Read-only; every function takes the engine and answers plain dicts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vigil.core.coverage import COVERED_BY
from vigil.shell.stores.tables import alerts, incident_alerts, incident_audit, incidents, outbox

_INCIDENT_COLUMNS = [c for c in incidents.columns if c.name != "doc"]
_ALERT_COLUMNS = [alerts.c[name] for name in (
    "alert_id", "patient_id", "kind", "category", "severity", "state", "rule", "values", "news2", "contributors",
    "model_version", "onset_t", "raised_t", "cleared_t", "clinician_summary", "patient_message")]


def open_incidents(engine: Engine, patient_ids: Collection[str] | None) -> list[dict[str, Any]]:
    """Every unresolved incident of these patients (None: all), with its member alerts' kinds and
    whether each is still active (from the incident's document: unresolved incidents are few)."""
    query = select(*_INCIDENT_COLUMNS, incidents.c.doc).where(incidents.c.state != "resolved")
    if patient_ids is not None:
        query = query.where(incidents.c.patient_id.in_(sorted(patient_ids)))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        members = (row.pop("doc") or {}).get("members", {})
        row["alerts"] = [{"alert_id": alert_id, **member} for alert_id, member in members.items()]
    return rows


def open_technical_alerts(engine: Engine, patient_ids: Collection[str] | None) -> list[dict[str, Any]]:
    """Open alerts of the kinds that say Vigil cannot see the patient (core.coverage.COVERED_BY:
    device_offline, not_monitored, poor_signal; a low battery is not one), in words the rule gives.
    The scaled runtime's coverage seen from the store."""
    query = select(alerts.c.patient_id, alerts.c.kind, alerts.c.rule, alerts.c.raised_t).where(
        alerts.c.kind.in_(sorted(set(COVERED_BY.values()))), alerts.c.state == "open").order_by(alerts.c.raised_t)
    if patient_ids is not None:
        query = query.where(alerts.c.patient_id.in_(sorted(patient_ids)))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def patient_alerts(engine: Engine, patient_id: str, since: float, limit: int = 500) -> list[dict[str, Any]]:
    """The patient's alerts raised since `since`, or still open, oldest first."""
    query = (select(*_ALERT_COLUMNS).where(alerts.c.patient_id == patient_id)
             .where((alerts.c.raised_t >= since) | (alerts.c.state == "open"))
             .order_by(alerts.c.raised_t.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)][::-1]


def patient_incidents(engine: Engine, patient_id: str, since: float, limit: int = 100) -> list[dict[str, Any]]:
    """The patient's incidents updated since `since` (or unresolved), each with its audit trail
    (the timeline: opened, escalated, acknowledged, resolved, with who and when) and alert ids."""
    query = (select(*_INCIDENT_COLUMNS).where(incidents.c.patient_id == patient_id)
             .where((incidents.c.updated_t >= since) | (incidents.c.state != "resolved"))
             .order_by(incidents.c.opened_t.desc()).limit(limit))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)][::-1]
        ids = [row["incident_id"] for row in rows]
        if not ids:
            return rows
        audit = conn.execute(select(incident_audit.c.incident_id, incident_audit.c.revision, incident_audit.c.event,
                                    incident_audit.c.t, incident_audit.c.actor, incident_audit.c.alert_id,
                                    incident_audit.c.detail)
                             .where(incident_audit.c.incident_id.in_(ids)).order_by(incident_audit.c.revision)).all()
        members = conn.execute(select(incident_alerts.c.incident_id, incident_alerts.c.alert_id)
                               .where(incident_alerts.c.incident_id.in_(ids))).all()
    for row in rows:
        row["timeline"] = [dict(a._mapping) for a in audit if a.incident_id == row["incident_id"]]
        row["alert_ids"] = sorted({m.alert_id for m in members if m.incident_id == row["incident_id"]})
    return rows


def delivered_texts(engine: Engine, patient_id: str, since: float, limit: int = 200) -> list[dict[str, Any]]:
    """The explanations (to the patient and the care team) and every message to the patient that
    reached someone (status sent) since `since`, newest first, each text once: what was actually
    told, by which channel. Reminders and escalations to the team are the incident's timeline."""
    query = (select(outbox.c.key, outbox.c.incident_id, outbox.c.event, outbox.c.audience, outbox.c.role,
                    outbox.c.channel, outbox.c.recipient_id, outbox.c.language, outbox.c.subject, outbox.c.body,
                    outbox.c.text_source, outbox.c.sent_t)
             .where(outbox.c.patient_id == patient_id, outbox.c.status == "sent", outbox.c.sent_t >= since)
             .where((outbox.c.event == "explanation") | (outbox.c.audience == "patient"))
             .order_by(outbox.c.sent_t.desc()).limit(limit))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    seen: set[tuple[str, str]] = set()
    once = []
    for row in rows:
        key = (row["audience"], row["body"] or row["subject"] or "")
        if key not in seen:
            seen.add(key)
            once.append(row)
    return once
