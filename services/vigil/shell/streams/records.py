"""Kafka records between Vigil's own services (JSON, version 1, pydantic at both ends).

- `vigil.readings`, key patient_id: readings a gateway checked against the device contract.
  Keying by patient keeps each patient's readings in order on one partition.
- `vigil.deadletter`, key device_id: every payload or sample that was refused, with its first
  bytes (at most VIGIL_DEADLETTER_MAX_RAW_BYTES), its full length and SHA-256; the topic's
  retention is VIGIL_DEADLETTER_RETENTION_DAYS (shell/streams/topics.py).
- `vigil.alerts`, key patient_id: alert lifecycle events and per-batch scores. Delivery is at
  least once; consumers deduplicate by `alert_id` (and event, t).
"""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.events import Alert, Category, Severity
from vigil.core.reading import Reading
from vigil.shell.contract.validation import Rejection
from vigil.shell.stores.dead_letters import MAX_RAW_BYTES, cap_raw
from vigil.shell.stores.rows import DeadLetterRow

_READING_FIELDS = [f.name for f in fields(Reading) if f.name not in ("patient_id", "device_id")]


def reading_values(reading: Reading) -> dict[str, Any]:
    values = {}
    for name in _READING_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            values[name] = value
    return values


class ReadingsRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    patient_id: str
    device_id: str
    topic: str
    received_at: float
    readings: list[dict[str, Any]]
    # Coverage notes (issue 13), on a record of their own (no readings): this device's refused
    # samples by reason, or its status (`offline` is its last will). Absent from readings records.
    refused: dict[str, int] | None = None
    status: Literal["online", "offline"] | None = None

    @staticmethod
    def note(patient_id: str, device_id: str, topic: str, received_at: float, *,
             refused: dict[str, int] | None = None, status: str | None = None) -> "ReadingsRecord":
        """A coverage note for the patient's partition: what the gateway refused, or the device's status."""
        return ReadingsRecord(patient_id=patient_id, device_id=device_id, topic=topic, received_at=received_at,
                              readings=[], refused=refused, status=status)  # type: ignore[arg-type]

    @staticmethod
    def of(readings: list[Reading], topic: str, received_at: float) -> "ReadingsRecord":
        first = readings[0]
        return ReadingsRecord.model_construct(  # built from already-validated readings: no second validation
            v=1, patient_id=first.patient_id, device_id=first.device_id, topic=topic, received_at=received_at,
            readings=[reading_values(r) for r in readings],
        )

    def to_json(self) -> bytes:
        """Compact JSON, faster than pydantic's serializer for these plain dicts."""
        if self.refused is not None or self.status is not None:
            return self.model_dump_json(exclude_none=True).encode()
        return json.dumps({"v": 1, "patient_id": self.patient_id, "device_id": self.device_id, "topic": self.topic,
                           "received_at": self.received_at, "readings": self.readings}, separators=(",", ":")).encode()

    def to_readings(self) -> list[Reading]:
        return [Reading(patient_id=self.patient_id, device_id=self.device_id, **values) for values in self.readings]


class DeadLetterRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    reason: str
    detail: str
    topic: str
    device_id: str | None
    patient_id: str | None
    received_at: float
    sample_index: int | None
    raw_b64: str  # the first bytes only (at most the cap)
    raw_bytes: int | None = None  # the whole payload's length (None from writers before issue 12)
    raw_sha256: str | None = None  # and its SHA-256, hex

    @staticmethod
    def of(rejection: Rejection, max_raw_bytes: int = MAX_RAW_BYTES) -> "DeadLetterRecord":
        capped = cap_raw(rejection.raw, max_raw_bytes)
        return DeadLetterRecord(
            reason=str(rejection.reason), detail=rejection.detail, topic=rejection.topic,
            device_id=rejection.device_id, patient_id=rejection.patient_id, received_at=rejection.received_at,
            sample_index=rejection.sample_index, raw_b64=base64.b64encode(capped.raw).decode(),
            raw_bytes=capped.raw_bytes, raw_sha256=capped.raw_sha256,
        )

    @staticmethod
    def of_row(row: DeadLetterRow, max_raw_bytes: int = MAX_RAW_BYTES) -> "DeadLetterRecord":
        """A stored row (already capped by DeadLetterKeeper) as a record; capped again if not."""
        capped = cap_raw(row.raw, max_raw_bytes)
        return DeadLetterRecord(
            reason=row.reason, detail=row.detail, topic=row.topic, device_id=row.device_id,
            patient_id=row.patient_id, received_at=row.received_at, sample_index=row.sample_index,
            raw_b64=base64.b64encode(capped.raw).decode(),
            raw_bytes=row.raw_bytes if row.raw_bytes is not None else capped.raw_bytes,
            raw_sha256=row.raw_sha256 or capped.raw_sha256,
        )

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64)


# A JSON number kept as it came (PEP 484's float, which takes an int too): the dict this model
# replaced wrote 74 as 74, where pydantic's float would write 74.0. JSON writes NaN as null, and
# a record that says null must still be read: an alert is never dropped for one odd number.
Number = int | float
Measured = int | float | None


class AlertSnapshot(BaseModel):
    """The core's Alert as it stood at the event: its fields, in `Alert.as_dict()`'s order and
    types, so the JSON is what the record carried when this was a plain dict. Unknown keys are
    ignored, as a dict's consumers ignored them; a missing category is clinical, as it was."""

    model_config = ConfigDict(extra="ignore")

    alert_id: str
    patient_id: str
    kind: str
    category: Category = "clinical"
    severity: Severity
    rule: str
    values: dict[str, float | int | str | bool | None]
    onset_t: Number
    raised_t: Number
    news2: dict[str, Any] | None = None
    contributors: list[dict[str, Any]] = Field(default_factory=list)
    model_version: str | None = None
    cleared_t: Number | None = None
    baselines: dict[str, Measured] = Field(default_factory=dict)
    trends: dict[str, Measured] = Field(default_factory=dict)

    @staticmethod
    def of(alert: Alert) -> "AlertSnapshot":
        """Copied now: the core goes on changing its alert after the event."""
        return AlertSnapshot.model_construct(**alert.as_dict())  # the core's own alert: no second validation

    def to_alert(self) -> Alert:
        return Alert(**{name: getattr(self, name) for name in _ALERT_FIELDS})


_ALERT_FIELDS = tuple(AlertSnapshot.model_fields)


class AlertRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    type: Literal["alert"] = "alert"
    event: Literal["raised", "severity_changed", "cleared"]
    alert: AlertSnapshot
    t: float | None = None  # when the event happened (None from writers before issue 5: use raised_t)
    patient_message: str | None = None
    clinician_summary: str | None = None


class ScoreRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    type: Literal["score"] = "score"
    patient_id: str
    t: float
    news2: int | None
    news2_partial: bool | None
    readings: int
    anomaly: float | None = None
    risk: float | None = None
    model_version: str | None = None
