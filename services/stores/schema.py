"""Tables, one metadata for SQLite (embedded) and PostgreSQL (scaled)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# A reading is identified by (patient, device, time): writing it twice changes nothing.
readings = Table(
    "readings",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("t", Float, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hr", Float),
    Column("spo2", Float),
    Column("rr", Float),
    Column("temp", Float),
    Column("sbp", Float),
    Column("dbp", Float),
    Column("steps", Integer),
    Column("accel", Float),
    Column("battery", Float),
    Column("on_oxygen", Boolean),
    Column("acvpu", String(1)),
    Column("flags", String(128), nullable=False, default=""),
    Column("news2", Integer),
    Column("news2_partial", Boolean),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("category", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # open, acknowledged, resolved
    Column("rule", Text, nullable=False),
    Column("values", JSON, nullable=False),
    Column("news2", JSON),
    Column("contributors", JSON),
    Column("model_version", String(64)),
    Column("onset_t", Float, nullable=False),
    Column("raised_t", Float, nullable=False),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("acknowledged_t", Float),
    Column("cleared_t", Float),
    Column("patient_message", Text),
    Column("clinician_summary", Text),
)

# Audit trail: what happened to each alert, when, and who did it.
alert_events = Table(
    "alert_events",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("event", String(32), primary_key=True),
    Column("t", Float, primary_key=True),
    Column("actor", String(64), nullable=False, default="vigil"),
    Column("detail", JSON),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),
    Column("topic", String(256), nullable=False),
    Column("device_id", String(64)),
    Column("patient_id", String(64)),
    Column("reason", String(32), nullable=False, index=True),
    Column("detail", Text, nullable=False),
    Column("sample_index", Integer),
    Column("raw", LargeBinary, nullable=False),
)

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("t", Float, nullable=False),
    Column("battery", Float),
)

# Learned-model scores, one row per patient each time the model stage scores them.
scores = Table(
    "scores",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("t", Float, primary_key=True),
    Column("anomaly", Float, nullable=False),
    Column("risk", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
)

Index("ix_readings_t", readings.c.t)
