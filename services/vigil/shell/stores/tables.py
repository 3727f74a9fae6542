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
    Column("state", String(16), nullable=False),  # open, cleared (the lifecycle is the incident's)
    Column("rule", Text, nullable=False),
    Column("values", JSON, nullable=False),
    Column("news2", JSON),
    Column("contributors", JSON),
    Column("model_version", String(64)),
    Column("onset_t", Float, nullable=False),
    Column("raised_t", Float, nullable=False),
    Column("cleared_t", Float),
    Column("baselines", JSON),
    Column("trends", JSON),
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
    Column("raw", LargeBinary, nullable=False),  # the first VIGIL_DEADLETTER_MAX_RAW_BYTES only
    Column("raw_bytes", Integer),  # the whole payload's length
    Column("raw_sha256", String(64)),  # and its SHA-256 (hex)
)

# Every rejection, counted per device and reason, whether or not its row was kept (rate limit).
dead_letter_counts = Table(
    "dead_letter_counts",
    metadata,
    Column("device_id", String(64), primary_key=True),  # "" when the device is not known
    Column("reason", String(32), primary_key=True),
    Column("refused", Integer, nullable=False),
    Column("kept", Integer, nullable=False),  # of which stored in dead_letters
    Column("first_t", Float, nullable=False),
    Column("last_t", Float, nullable=False),
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

# -- trends (issue 16): per-minute rollups and each patient's latest values, beside the readings ---------
# Filled by SqlStore.write in the same transaction as the readings and scores, from the rows that
# insert actually added (RETURNING), so a reading written twice is counted once (stores/rollups.py).
ROLLUP_METRICS = ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2", "risk")  # risk: from `scores`


def _rollup_columns() -> list[Column]:
    columns: list[Column] = []
    for metric in ROLLUP_METRICS:
        columns += [Column(f"{metric}_min", Float), Column(f"{metric}_max", Float),
                    Column(f"{metric}_sum", Float, nullable=False, default=0.0),
                    Column(f"{metric}_n", Integer, nullable=False, default=0)]
    return columns


# One row per patient and minute (t: the minute's start, epoch seconds): min, max, sum and count
# per vital, NEWS2 and risk; merged on conflict (min of mins, max of maxes, sums and counts added).
vital_rollups = Table(
    "vital_rollups",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("t", Float, primary_key=True),
    *_rollup_columns(),
    Column("news2_partial_n", Integer, nullable=False, default=0),  # readings whose NEWS2 was partial
    Column("flagged_n", Integer, nullable=False, default=0),  # readings with a quality flag
    Column("readings_n", Integer, nullable=False, default=0),
)

# Each patient's newest value of each vital (and NEWS2, risk) with its time: a vital measured every
# few hours (a cuff's blood pressure) is still found at once. Replaced only by a newer time.
vital_latest = Table(
    "vital_latest",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("vital", String(16), primary_key=True),  # one of ROLLUP_METRICS
    Column("t", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("partial", Boolean),  # NEWS2 only: was that score partial
)

# -- the alert desk (vigil.shell.desk): incidents, their audit trail, and the outbox ---------------

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(32), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("category", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False, index=True),  # open, acknowledged, resolved
    Column("opened_t", Float, nullable=False),
    Column("updated_t", Float, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("escalation_level", Integer, nullable=False),
    Column("acknowledged_t", Float),
    Column("acknowledged_by", String(128)),
    Column("resolved_t", Float),
    Column("resolved_by", String(128)),
    Column("resolution", Text),
    Column("doc", JSON, nullable=False),  # the whole incident, to restore the book after a restart
    Column("outcome", String(32)),  # what the clinician found on resolving (core.outcomes): the models' label
)

incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("incident_id", String(32), nullable=False, index=True),
)

# Who did what to an incident, and when: one row per revision, so a replay cannot add a row twice.
incident_audit = Table(
    "incident_audit",
    metadata,
    Column("incident_id", String(32), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("event", String(32), nullable=False),
    Column("t", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("alert_id", String(32)),
    Column("detail", JSON),
)

# The alert events the desk has taken in: (alert, event, time) is consumed exactly once.
desk_inbox = Table(
    "desk_inbox",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("event", String(32), primary_key=True),
    Column("t", Float, primary_key=True),
)

# The transactional outbox: written in the same transaction as the incident change it reports.
outbox = Table(
    "outbox",
    metadata,
    Column("key", String(32), primary_key=True),  # idempotency key
    Column("incident_id", String(32), nullable=False, index=True),
    Column("patient_id", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("recipient_id", String(160), nullable=False),
    Column("role", String(16), nullable=False),
    Column("audience", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(512), nullable=False),
    Column("language", String(8), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("critical", Boolean, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("text_source", String(16), nullable=False),  # template, llm
    Column("status", String(16), nullable=False, index=True),  # pending, sending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("deliver_after", Float, nullable=False),
    Column("next_attempt_t", Float, nullable=False),
    Column("lease_until", Float),
    Column("created_t", Float, nullable=False),
    Column("sent_t", Float),
    Column("failed_t", Float),  # when it failed for good (the dispatcher's "reached nobody" survives a restart)
    Column("provider_id", String(128)),
    Column("last_error", Text),
)

# Explanations written after the alert went out: one per alert and language, cached by facts.
explanations = Table(
    "explanations",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("language", String(8), primary_key=True),
    Column("facts_key", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # template, llm
    Column("patient_text", Text, nullable=False),
    Column("clinician_text", Text, nullable=False),
    Column("fallback_reason", String(128)),
    Column("failed_checks", JSON),
    Column("latency_s", Float),
    Column("created_t", Float, nullable=False),
)

Index("ix_readings_t", readings.c.t)
Index("ix_dead_letters_received_at", dead_letters.c.received_at)  # the retention purge
Index("ix_outbox_due", outbox.c.status, outbox.c.next_attempt_t)

# -- people: local accounts, server-side sessions, patient enrolment codes (issue 11; vigil.shell.identity) --
# Secrets are never stored: passwords as scrypt hashes, session ids and enrolment codes as SHA-256.
users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("wards", JSON, nullable=False),  # list of ward names
    Column("patients", JSON, nullable=False),  # list of patient ids (patient: own; caregiver: linked)
    Column("password_hash", String(256), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_t", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie's value
    Column("username", String(64), index=True),  # None: a patient's phone bound by an enrolment code
    Column("subject", String(160), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("wards", JSON, nullable=False),
    Column("patients", JSON, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_t", Float, nullable=False),
    Column("last_seen_t", Float, nullable=False),
    Column("expires_t", Float, nullable=False),
    Column("idle_s", Float, nullable=False),  # unused this long: ended (a console's is shorter than a phone's)
)

enrolment_codes = Table(
    "enrolment_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),  # SHA-256 of the code
    Column("patient_id", String(64), nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("created_t", Float, nullable=False),
    Column("expires_t", Float, nullable=False),
    Column("used_t", Float),
)
# -- the access audit (issue 11): who read or did what to which patient's data --------------------
# One row per request and patient (a list of ten patients' incidents: ten rows, one insert). Append-only,
# enforced by the database: migrate.py installs triggers that refuse UPDATE, DELETE (and, on PostgreSQL,
# TRUNCATE) on every table marked `append_only`. The embedded runtime's retention purge deletes rows older
# than VIGIL_RETAIN_AUDIT_DAYS, and the SQLite trigger lets it delete only those (never a row younger than a
# year; `aged_by` names the time column): docs/data.md, "Retention", and docs/security.md, "Audit".
access_audit = Table(
    "access_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("t", Float, nullable=False),  # when (epoch seconds, UTC)
    Column("subject", String(160), nullable=False),  # who: Principal.subject, "anonymous" without one
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("via", String(16), nullable=False),  # how they were authenticated
    Column("patient_id", String(64)),  # the patient, when exactly one (None: none, or many: see `patients`)
    Column("action", String(32), nullable=False),  # "read incidents", "acknowledge", ...
    Column("target", String(256), nullable=False),  # what exactly, e.g. an incident id
    Column("outcome", String(16), nullable=False),  # ok, denied, not_found, conflict, invalid, error
    Column("status", Integer),  # the HTTP status answered
    Column("address", String(64)),  # the request's client address
    # Every patient shown, sorted, space-delimited with a space at each end (" pt-1 pt-2 "), so one
    # read of a list is one row; `AuditTrail.export` finds a patient in it and expands it back to one
    # line per patient. None when no patient's data was shown (and on rows written before this column).
    Column("patients", Text),
    info={"append_only": True, "aged_by": "t"},
    # Written by a role that may only INSERT (stores/grants.py): no `RETURNING id`, which needs SELECT.
    implicit_returning=False,
)
Index("ix_access_audit_t", access_audit.c.t)
Index("ix_access_audit_patient", access_audit.c.patient_id, access_audit.c.t)
# -- issue 11, devices: each device's MQTT credentials (vigil.shell.identity.devices) ------------
# The secret itself is never stored: an scrypt hash (verification) and a Mosquitto `$7$` hash of the
# same secret (exported to the scaled broker's password file). A revoked row stays, for the record.
device_credentials = Table(
    "device_credentials",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("secret_hash", String(256), nullable=False),  # scrypt$n$r$p$salt$hash (base64)
    Column("mosquitto_hash", String(256), nullable=False),  # $7$iterations$salt$hash (PBKDF2-SHA512)
    Column("created_t", Float, nullable=False),
    Column("revoked_t", Float),
)
