"""The outcome labels: what clinicians found when they resolved incidents, per alert.

A label is stored once, on the incident (`incidents.outcome`, with the note in `resolution`, who in
`resolved_by`; core.outcomes); an incident groups alerts, and a model learns per alert, so the
export gives one line per alert of each labelled incident, with both ids. Oldest resolution first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vigil.shell.stores.tables import alerts, incident_alerts, incidents

EXPORT_COLUMNS = ("incident_id", "alert_id", "patient_id", "outcome", "note", "resolved_by", "resolved_t",
                  "incident_severity", "incident_category", "opened_t", "alert_kind", "alert_category",
                  "alert_severity", "onset_t", "raised_t", "cleared_t", "model_version")


def outcome_labels(engine: Engine, *, since: float | None = None, until: float | None = None,
                   patient_ids: Collection[str] | None = None, page: int = 1000) -> Iterator[dict[str, Any]]:
    """Every labelled (alert, incident) pair resolved in [since, until), of these patients (None: all)."""
    query = (select(incidents.c.incident_id, incident_alerts.c.alert_id, incidents.c.patient_id, incidents.c.outcome,
                    incidents.c.resolution.label("note"), incidents.c.resolved_by, incidents.c.resolved_t,
                    incidents.c.severity.label("incident_severity"), incidents.c.category.label("incident_category"),
                    incidents.c.opened_t, alerts.c.kind.label("alert_kind"), alerts.c.category.label("alert_category"),
                    alerts.c.severity.label("alert_severity"), alerts.c.onset_t, alerts.c.raised_t, alerts.c.cleared_t,
                    alerts.c.model_version)
             .join(incident_alerts, incident_alerts.c.incident_id == incidents.c.incident_id)
             .join(alerts, alerts.c.alert_id == incident_alerts.c.alert_id, isouter=True)
             .where(incidents.c.outcome.is_not(None))
             .order_by(incidents.c.resolved_t, incidents.c.incident_id, incident_alerts.c.alert_id))
    if since is not None:
        query = query.where(incidents.c.resolved_t >= since)
    if until is not None:
        query = query.where(incidents.c.resolved_t < until)
    if patient_ids is not None:
        query = query.where(incidents.c.patient_id.in_(sorted(patient_ids)))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=page).execute(query)
        for row in result:
            yield dict(row._mapping)
