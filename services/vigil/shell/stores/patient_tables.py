"""The patient app's tables (issue 16): the patient's answers to alerts, read receipts, messages
from the care team, and the phone's Web Push subscriptions. Same metadata as every other table,
so `SqlStore` creates them (SQLite and PostgreSQL) and `migrate.upgrade` adds what an older store lacks."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Text, Table

from vigil.shell.stores.tables import metadata

# "I'm OK" / "I need help": one row per answer, kept even when the incident was already resolved.
patient_replies = Table(
    "patient_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("incident_id", String(32), nullable=False, index=True),
    Column("alert_id", String(32)),
    Column("answer", String(8), nullable=False),  # ok, help
    Column("t", Float, nullable=False),
    Column("subject", String(160), nullable=False),  # who answered (the patient's session)
)

# The patient opened a message: one row per message (the first reading counts).
message_reads = Table(
    "message_reads",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("message_key", String(40), primary_key=True),  # an outbox key, or a care message's key
    Column("read_t", Float, nullable=False),
)

# A message a nurse or physician wrote to the patient (shown in the app beside Vigil's texts).
care_messages = Table(
    "care_messages",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("author", String(160), nullable=False),  # Principal.subject
    Column("author_name", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("t", Float, nullable=False),
)

# One browser's push subscription (RFC 8030 endpoint + RFC 8291 keys) for one patient.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("endpoint_hash", String(64), primary_key=True),  # SHA-256 of the endpoint URL
    Column("patient_id", String(64), nullable=False, index=True),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(128), nullable=False),  # the browser's public key, base64url
    Column("auth", String(64), nullable=False),  # the shared authentication secret, base64url
    Column("language", String(8), nullable=False),
    Column("created_t", Float, nullable=False),
    Column("last_ok_t", Float),
)
Index("ix_message_reads_key", message_reads.c.message_key)
