"""The rows a processing batch stores: one typed record per table, fields named as its columns.

The pipeline and the alert desk build these; `SqlStore` and `DeskStore` turn them into
columns (the one place that knows a row's table), and the InfluxDB writer into points.
NamedTuples, because a tuple is the cheapest record Python has: the reading row is built once
per sample on the hot path, and its field order is the `readings` column order, so SQLite's
executemany takes it as it is. A test holds every row's fields to its table's columns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from vigil.core.events import Alert
from vigil.core.incident import Incident


class ReadingRow(NamedTuple):
    """One accepted reading with its quality flags and NEWS2 (`readings`, in column order)."""

    patient_id: str
    device_id: str
    t: float
    seq: int
    hr: float | None = None
    spo2: float | None = None
    rr: float | None = None
    temp: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    steps: int | None = None
    accel: float | None = None
    battery: float | None = None
    on_oxygen: bool | None = None
    acvpu: str | None = None
    flags: str = ""
    news2: int | None = None
    news2_partial: bool | None = None


class AlertRow(NamedTuple):
    """An alert as it stands after one of its events (`alerts`: upserted by alert id)."""

    alert_id: str
    patient_id: str
    kind: str
    category: str
    severity: str
    state: str  # open, cleared
    rule: str
    values: dict[str, Any]
    news2: dict[str, Any] | None
    contributors: list[dict[str, Any]]
    model_version: str | None
    onset_t: float
    raised_t: float
    cleared_t: float | None
    baselines: dict[str, float]
    trends: dict[str, float]
    patient_message: str | None  # the alert's words, when it was raised
    clinician_summary: str | None

    @classmethod
    def of(cls, alert: Alert, patient_message: str | None = None, clinician_summary: str | None = None) -> AlertRow:
        """The alert as it stands now (containers copied: the core goes on changing its alert)."""
        return cls(alert.alert_id, alert.patient_id, alert.kind, alert.category, alert.severity,
                   "cleared" if alert.cleared_t is not None else "open", alert.rule, dict(alert.values), alert.news2,
                   list(alert.contributors), alert.model_version, alert.onset_t, alert.raised_t, alert.cleared_t,
                   dict(alert.baselines), dict(alert.trends), patient_message, clinician_summary)


class AlertEventRow(NamedTuple):
    """What happened to an alert, when, and who did it (`alert_events`)."""

    alert_id: str
    event: str  # raised, severity_changed, cleared
    t: float
    actor: str
    detail: dict[str, Any] | None


class DeadLetterRow(NamedTuple):
    """A refused payload or sample with its first bytes (`dead_letters`; the store numbers it).
    `raw` is capped (VIGIL_DEADLETTER_MAX_RAW_BYTES); `raw_bytes` and `raw_sha256` are the
    whole payload's length and hash (None on rows written before issue 12)."""

    received_at: float
    topic: str
    device_id: str | None
    patient_id: str | None
    reason: str
    detail: str
    sample_index: int | None
    raw: bytes
    raw_bytes: int | None = None
    raw_sha256: str | None = None


class DeadLetterCountRow(NamedTuple):
    """How many payloads or samples of one device were refused for one reason, and how many of
    them were kept as rows (`dead_letter_counts`: added to per batch; device "" when unknown)."""

    device_id: str
    reason: str
    refused: int
    kept: int
    first_t: float
    last_t: float


def merge_counts(rows: list[DeadLetterCountRow]) -> list[DeadLetterCountRow]:
    """One row per (device, reason): the batch's counts added up, its first and last time."""
    merged: dict[tuple[str, str], DeadLetterCountRow] = {}
    for row in rows:
        key = (row.device_id, row.reason)
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
        else:
            merged[key] = DeadLetterCountRow(row.device_id, row.reason, seen.refused + row.refused, seen.kept + row.kept,
                                             min(seen.first_t, row.first_t), max(seen.last_t, row.last_t))
    return list(merged.values())


class DeviceStatusRow(NamedTuple):
    """A device's last announced state (`device_status`: upserted by device id)."""

    device_id: str
    state: str
    t: float
    battery: float | None


class ScoreRow(NamedTuple):
    """A learned-model score of one patient, with the model that gave it (`scores`)."""

    patient_id: str
    t: float
    anomaly: float
    risk: float
    model_version: str


class IncidentRow(NamedTuple):
    """An incident's latest revision (`incidents`); `doc` is the whole incident, to restore it."""

    incident_id: str
    patient_id: str
    category: str
    severity: str
    state: str
    opened_t: float
    updated_t: float
    revision: int
    escalation_level: int
    acknowledged_t: float | None
    acknowledged_by: str | None
    resolved_t: float | None
    resolved_by: str | None
    resolution: str | None
    doc: dict[str, Any]
    outcome: str | None = None  # what the clinician found (core.outcomes): a label for the models

    @classmethod
    def of(cls, incident: Incident) -> IncidentRow:
        return cls(incident.incident_id, incident.patient_id, incident.category, incident.severity, incident.state,
                   incident.opened_t, incident.updated_t, incident.revision, incident.escalation_level,
                   incident.acknowledged_t, incident.acknowledged_by, incident.resolved_t, incident.resolved_by,
                   incident.resolution, incident.as_dict(), incident.outcome)


class IncidentAlertRow(NamedTuple):
    """Which incident an alert belongs to (`incident_alerts`)."""

    alert_id: str
    incident_id: str


class AuditRow(NamedTuple):
    """One revision of an incident: what happened, when, by whom (`incident_audit`)."""

    incident_id: str
    revision: int
    event: str
    t: float
    actor: str
    alert_id: str | None
    detail: dict[str, Any]


class InboxRow(NamedTuple):
    """An alert change the desk has taken in, so it is taken in once (`desk_inbox`)."""

    alert_id: str
    event: str
    t: float


class OutboxRow(NamedTuple):
    """A new notification to deliver (`outbox`). Its delivery state (pending, no attempt yet,
    due at `deliver_after`) is the store's to fill in (`sql.outbox_columns`)."""

    key: str  # the idempotency key
    incident_id: str
    patient_id: str
    event: str
    revision: int
    recipient_id: str
    role: str
    audience: str
    channel: str
    address: str
    language: str
    severity: str
    critical: bool
    subject: str
    body: str
    payload: dict[str, Any]
    text_source: str  # template, llm
    deliver_after: float
    created_t: float


class ExplanationRow(NamedTuple):
    """The richer explanation of an alert in one language, and how it was made (`explanations`)."""

    alert_id: str
    language: str
    facts_key: str
    source: str  # template, llm
    patient_text: str
    clinician_text: str
    fallback_reason: str | None
    failed_checks: list[str]
    latency_s: float
    created_t: float
