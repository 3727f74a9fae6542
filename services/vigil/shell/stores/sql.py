"""One SQL store for the embedded runtime (SQLite) and the scaled one (PostgreSQL).

Every write is idempotent (insert-or-ignore on natural keys, upserts for alerts), so replaying
a batch after a crash cannot duplicate a reading or an alert. One `write` call is one
transaction: a batch of readings, the alerts it caused and its dead letters land together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import case, create_engine, delete, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from vigil.shell.stores.migrate import upgrade
from vigil.shell.stores.private_files import protect_sqlite
from vigil.shell.stores.rollups import READING_RETURNING, Rollup, latest_upsert, rollup_upsert
from vigil.shell.stores.rows import (
    AlertEventRow,
    AlertRow,
    AuditRow,
    DeadLetterCountRow,
    DeadLetterRow,
    DeviceStatusRow,
    IncidentAlertRow,
    IncidentRow,
    InboxRow,
    OutboxRow,
    ReadingRow,
    ScoreRow,
    merge_counts,
)
import vigil.shell.stores.patient_tables  # noqa: F401  (registers the patient app's tables on the same metadata)
from vigil.shell.stores.tables import (
    alert_events,
    alerts,
    dead_letter_counts,
    dead_letters,
    desk_inbox,
    device_status,
    incident_alerts,
    incident_audit,
    incidents,
    metadata,
    outbox,
    readings,
    scores,
)


def _insert(engine: Engine, table: Any) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# A new outbox row's delivery has not started: pending, no attempt, due when it may be sent.
_OUTBOX_START: dict[str, Any] = {
    "status": "pending", "attempts": 0, "lease_until": None, "sent_t": None, "failed_t": None, "provider_id": None,
    "last_error": None,
}


class Row(Protocol):
    """Any row of rows.py (a NamedTuple)."""

    def _asdict(self) -> dict[str, Any]: ...


def columns(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as SQLAlchemy parameters: a row's fields are named as its table's columns (rows.py)."""
    return [row._asdict() for row in rows]


def outbox_columns(rows: Sequence[OutboxRow]) -> list[dict[str, Any]]:
    """New outbox rows as parameters: their fields, and the start of their delivery."""
    return [{**row._asdict(), "next_attempt_t": row.deliver_after, **_OUTBOX_START} for row in rows]


@dataclass(slots=True)
class WriteBatch:
    """What one processing batch (or one clinician action) stores, in one transaction."""

    readings: list[ReadingRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    alert_events: list[AlertEventRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)  # the rows kept (capped, rate-limited)
    dead_letter_counts: list[DeadLetterCountRow] = field(default_factory=list)  # every rejection, merged at write
    device_status: list[DeviceStatusRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)  # model scores, with their model version
    # The alert desk's share of the same transaction (vigil.shell.desk): the transactional outbox.
    incidents: list[IncidentRow] = field(default_factory=list)
    incident_alerts: list[IncidentAlertRow] = field(default_factory=list)
    incident_audit: list[AuditRow] = field(default_factory=list)
    desk_inbox: list[InboxRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.readings or self.alerts or self.alert_events or self.dead_letters or self.device_status
                    or self.dead_letter_counts or self.scores or self.incidents or self.incident_audit or self.desk_inbox or self.outbox)


class SchemaBehind(RuntimeError):
    """The tables lack what this version declares, and the role connected may not add it."""


class SqlStore:
    def __init__(self, url: str, *, audit_keep_days: float | None = None) -> None:
        """`audit_keep_days`: the access audit's retention, which the database's trigger enforces
        (migrate.append_only); None leaves the installed trigger as it is (tools, other runtimes)."""
        self.url = url
        protect_sqlite(url)  # owner-only, whatever the umask (private_files.py)
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            try:
                metadata.create_all(self.engine)
            except (IntegrityError, ProgrammingError):
                # Another process created the same tables at the same moment (PostgreSQL catalog race).
                metadata.create_all(self.engine)
            upgrade(self.engine, metadata, audit_keep_days)  # a store made by an earlier version gains what it lacks
        except DBAPIError as exc:
            # A service's own role may not create or alter anything (stores/grants.py): on a current
            # schema nothing above needs to, so this is a schema older than this Vigil.
            if getattr(exc.orig, "sqlstate", None) == "42501":
                raise SchemaBehind("the database schema is older than this Vigil, and this role may not change it: "
                                   "run `vigil migrate` with the schema owner's VIGIL_DATABASE_URL first "
                                   "(docs/deployment.md)") from None
            raise
        # Readings and scores come back from their insert only when the insert added them
        # (RETURNING), and only those are rolled up (stores/rollups.py): a replay counts nothing twice.
        # The hot insert of readings goes straight to the driver in both dialects (SQLite: SQLAlchemy's
        # per-row parameter processing was a third of the embedded pipeline's time; PostgreSQL: one
        # array per column, _postgres_insert_readings). Same semantics.
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._rollups = rollup_upsert(self.engine)
        self._latest = latest_upsert(self.engine)
        self._events = _insert(self.engine, alert_events).on_conflict_do_nothing()
        self._dead = _insert(self.engine, dead_letters)
        counts_insert = _insert(self.engine, dead_letter_counts)
        self._dead_counts = counts_insert.on_conflict_do_update(  # counts add up, whatever order batches land in
            index_elements=[dead_letter_counts.c.device_id, dead_letter_counts.c.reason],
            set_={"refused": dead_letter_counts.c.refused + counts_insert.excluded.refused,
                  "kept": dead_letter_counts.c.kept + counts_insert.excluded.kept,
                  "first_t": case((counts_insert.excluded.first_t < dead_letter_counts.c.first_t,
                                   counts_insert.excluded.first_t), else_=dead_letter_counts.c.first_t),
                  "last_t": case((counts_insert.excluded.last_t > dead_letter_counts.c.last_t,
                                  counts_insert.excluded.last_t), else_=dead_letter_counts.c.last_t)},
        )
        self._scores = _insert(self.engine, scores).on_conflict_do_nothing().returning(
            scores.c.patient_id, scores.c.t, scores.c.risk)
        alert_insert = _insert(self.engine, alerts)
        # An alert's identity and onset never change; its state, severity and timers do.
        mutable = ("severity", "state", "cleared_t")
        self._alerts = alert_insert.on_conflict_do_update(
            index_elements=[alerts.c.alert_id],
            set_={name: getattr(alert_insert.excluded, name) for name in mutable},
        )
        incident_insert = _insert(self.engine, incidents)
        # Never let an older revision overwrite a newer one, whatever order writes land in.
        self._incidents = incident_insert.on_conflict_do_update(
            index_elements=[incidents.c.incident_id],
            set_={c.name: getattr(incident_insert.excluded, c.name) for c in incidents.columns if c.name != "incident_id"},
            where=incidents.c.revision <= incident_insert.excluded.revision,
        )
        self._incident_alerts = _insert(self.engine, incident_alerts).on_conflict_do_nothing()
        self._audit = _insert(self.engine, incident_audit).on_conflict_do_nothing()
        self._inbox = _insert(self.engine, desk_inbox).on_conflict_do_nothing()
        self._outbox = _insert(self.engine, outbox).on_conflict_do_nothing()
        status_insert = _insert(self.engine, device_status)
        self._status = status_insert.on_conflict_do_update(
            index_elements=[device_status.c.device_id],
            set_={"state": status_insert.excluded.state, "t": status_insert.excluded.t, "battery": status_insert.excluded.battery},
        )

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        rollup = Rollup()
        with self.engine.begin() as conn:
            if batch.readings:
                if self._sqlite:
                    rollup.add_readings(_sqlite_insert_readings(conn, batch.readings))
                else:
                    rollup.add_readings(_postgres_insert_readings(conn, batch.readings))
            for row in columns(batch.alerts):  # upserts one by one: a batch may touch an alert twice
                conn.execute(self._alerts, row)
            if batch.alert_events:
                conn.execute(self._events, columns(batch.alert_events))
            if batch.dead_letters:
                conn.execute(self._dead, columns(batch.dead_letters))
            if batch.dead_letter_counts:
                conn.execute(self._dead_counts, columns(merge_counts(batch.dead_letter_counts)))
            if batch.device_status:
                conn.execute(self._status, columns(batch.device_status))
            if batch.scores:
                rollup.add_scores(conn.execute(self._scores, columns(batch.scores)).all())
            if rollup.minutes:
                conn.execute(self._rollups, rollup.minute_rows())
            if rollup.latest:  # none when the new readings measured nothing (a status-only sample)
                conn.execute(self._latest, rollup.latest_rows())
            self._write_desk(conn, batch)

    def _write_desk(self, conn: Any, batch: WriteBatch) -> None:
        for row in columns(batch.incidents):  # one by one: a batch may change an incident twice
            conn.execute(self._incidents, row)
        if batch.incident_alerts:
            conn.execute(self._incident_alerts, columns(batch.incident_alerts))
        if batch.incident_audit:
            conn.execute(self._audit, columns(batch.incident_audit))
        if batch.desk_inbox:
            conn.execute(self._inbox, columns(batch.desk_inbox))
        if batch.outbox:
            conn.execute(self._outbox, outbox_columns(batch.outbox))

    def known_alerts(self, alert_ids: list[str]) -> set[str]:
        """Which of these alert ids are already stored (raised before, perhaps before a restart)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.alert_id).where(alerts.c.alert_id.in_(alert_ids)))
            return {row[0] for row in rows}

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def alerts(self, *, patient_id: str | None = None, limit: int = 200,
               patient_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Newest first; `patient_ids`: only these patients (the caller's scope), None: all."""
        query = select(alerts).order_by(alerts.c.raised_t.desc()).limit(limit)
        if patient_id:
            query = query.where(alerts.c.patient_id == patient_id)
        if patient_ids is not None:
            query = query.where(alerts.c.patient_id.in_(sorted(patient_ids)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
            return None if row is None else dict(row._mapping)

    def dead_letter_reasons(self) -> dict[str, int]:
        query = select(dead_letters.c.reason, func.count()).group_by(dead_letters.c.reason)
        with self.engine.connect() as conn:
            return {reason: int(n) for reason, n in conn.execute(query)}

    def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        """Every rejection per (device, reason) within retention, kept as a row or not."""
        query = select(dead_letter_counts.c.device_id, dead_letter_counts.c.reason, dead_letter_counts.c.refused)
        with self.engine.connect() as conn:
            return {(device, reason): int(n) for device, reason, n in conn.execute(query)}

    def purge_dead_letters(self, before_t: float) -> tuple[int, int]:
        """Delete dead letters received before `before_t`, and the counts of (device, reason)
        pairs refused last before it (retention). Returns (rows, counts) deleted."""
        with self.engine.begin() as conn:
            rows = conn.execute(delete(dead_letters).where(dead_letters.c.received_at < before_t)).rowcount
            counts = conn.execute(delete(dead_letter_counts).where(dead_letter_counts.c.last_t < before_t)).rowcount
        return int(rows or 0), int(counts or 0)

    def dead_letters(self, limit: int = 100, patient_ids: Collection[str] | None = None) -> Sequence[dict[str, Any]]:
        """Newest first; `patient_ids`: only these patients' and those of no known patient, None: all."""
        query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
        if patient_ids is not None:
            query = query.where(dead_letters.c.patient_id.is_(None) | dead_letters.c.patient_id.in_(sorted(patient_ids)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def readings_for(self, patient_id: str, since_t: float = 0.0) -> Iterable[dict[str, Any]]:
        query = select(readings).where(readings.c.patient_id == patient_id, readings.c.t >= since_t).order_by(readings.c.t)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def close(self) -> None:
        self.engine.dispose()


_SQLITE_CHUNK = 256  # rows per multi-row INSERT: 256 × 18 columns stays far below SQLite's 32,766 variables
_sqlite_insert_sql: dict[int, str] = {}


def _sqlite_insert_readings(conn: Any, rows: Sequence[ReadingRow]) -> list[tuple[Any, ...]]:
    """INSERT OR IGNORE the readings, returning (READING_RETURNING) only the ones it added.

    Multi-row VALUES, because RETURNING does not work with executemany. Chunks of 256 rows, and
    the rest in powers of two, so at most nine statement texts exist (sqlite3 caches them prepared)."""
    added: list[tuple[Any, ...]] = []
    start = 0
    while start < len(rows):
        left = len(rows) - start
        size = _SQLITE_CHUNK if left >= _SQLITE_CHUNK else 1 << (left.bit_length() - 1)
        sql = _sqlite_insert_sql.get(size)
        if sql is None:
            one = f"({', '.join('?' for _ in ReadingRow._fields)})"
            sql = _sqlite_insert_sql[size] = (
                f"INSERT OR IGNORE INTO readings ({', '.join(ReadingRow._fields)}) VALUES {', '.join([one] * size)} "
                f"RETURNING {', '.join(READING_RETURNING)}")
        # One flat tuple of parameters: sqlite3 binds plain tuples fastest (measured).
        params = tuple(value for row in rows[start:start + size] for value in row)
        added += conn.exec_driver_sql(sql, params).fetchall()
        start += size
    return added


# Each column's array type: the readings go to PostgreSQL as one array per column (see below).
_PG_ARRAY_TYPES = {"patient_id": "text", "device_id": "text", "t": "float8", "seq": "int4", "steps": "int4",
                   "on_oxygen": "bool", "acvpu": "text", "flags": "text", "news2": "int4", "news2_partial": "bool"}
_POSTGRES_INSERT_SQL = (
    f"INSERT INTO readings ({', '.join(ReadingRow._fields)}) SELECT * FROM unnest("
    + ", ".join(f"%({name})s::{_PG_ARRAY_TYPES.get(name, 'float8')}[]" for name in ReadingRow._fields)
    + f") ON CONFLICT DO NOTHING RETURNING {', '.join(READING_RETURNING)}")


def _postgres_insert_readings(conn: Any, rows: Sequence[ReadingRow]) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT DO NOTHING the readings, returning (READING_RETURNING) only the ones it added.

    One statement with one array per column (unnest), rather than SQLAlchemy's multi-row VALUES:
    psycopg rewrites a statement's placeholders in Python, and for 500 readings × 18 columns that
    took two thirds of the write (measured: docs/benchmarks.md, issue 16). A reading twice in one
    batch is inserted, and returned, once."""
    params = {}
    for name, values in zip(ReadingRow._fields, zip(*rows)):
        kind = _PG_ARRAY_TYPES.get(name, "float8")
        if kind == "float8":  # psycopg dumps a list of one Python type only (a 37 among 36.8s is an int)
            params[name] = [None if v is None else float(v) for v in values]
        elif kind == "int4":
            params[name] = [None if v is None else int(v) for v in values]
        else:
            params[name] = list(values)
    return conn.exec_driver_sql(_POSTGRES_INSERT_SQL, params).fetchall()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
