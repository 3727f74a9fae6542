"""Retention of the SQL store, SQLite or PostgreSQL: what is purged, kind by kind (docs/data.md, "Retention").

Each kind (readings, rollups, dead letters, notifications, explanations, audit) is kept for its own
number of days (VIGIL_RETAIN_*_DAYS; 0 keeps it forever). A purge deletes at most `chunk_rows`
rows per table per call, each call one short transaction (in the embedded runtime on the writer
thread), so ingest batches queue between chunks instead of behind one long DELETE. The same
statements serve both databases: a chunk is picked by SQLite's `rowid` or PostgreSQL's `ctid`.

What is never purged, whatever its age:

- anything of an incident that is not resolved: its patient's readings and scores, its
  notifications, its alerts' explanations (the ward may still need the evidence);
- a notification still waiting to go out (pending, sending, held for approval);
- an explanation of an alert still open;
- an access-audit row younger than the audit retention (and never one younger than a year):
  the database's own trigger refuses it (migrate.py), whatever this module asks.

Alerts, alert events, incidents and their audit trail are the clinical record and are not purged
here at all; device credentials and accounts live until revoked or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

KINDS = ("readings", "rollups", "dead_letters", "notifications", "explanations", "audit")
DAY_S = 86400.0

# Of these patients and incidents nothing is purged: their incident is still open or acknowledged.
_UNRESOLVED_PATIENTS = "SELECT patient_id FROM incidents WHERE state != 'resolved'"
_UNRESOLVED_INCIDENTS = "SELECT incident_id FROM incidents WHERE state != 'resolved'"
_KEPT_ALERTS = ("SELECT ia.alert_id FROM incident_alerts ia JOIN incidents i ON i.incident_id = ia.incident_id "
                "WHERE i.state != 'resolved' UNION SELECT alert_id FROM alerts WHERE state = 'open'")
_WAITING = "('pending', 'sending', 'held')"  # notifications not yet delivered or given up


def _chunked(table: str, where: str) -> str:
    """A DELETE of at most :limit rows of `table` matching `where`; `{row}` is the dialect's row
    address (ROW_ADDRESS), filled in by the Purger."""
    return f"DELETE FROM {table} WHERE {{row}} IN (SELECT {{row}} FROM {table} WHERE {where} LIMIT :limit)"


ROW_ADDRESS = {"sqlite": "rowid", "postgresql": "ctid"}


# kind -> (table, DELETE statement) in order; `:before` is the kind's cut-off time (epoch seconds).
STATEMENTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "readings": (
        ("readings", _chunked("readings", f"t < :before AND patient_id NOT IN ({_UNRESOLVED_PATIENTS})")),
        ("scores", _chunked("scores", f"t < :before AND patient_id NOT IN ({_UNRESOLVED_PATIENTS})")),
    ),
    "rollups": (  # per-minute summaries: kept longer than the raw readings (VIGIL_RETAIN_ROLLUPS_DAYS)
        ("vital_rollups", _chunked("vital_rollups", f"t < :before AND patient_id NOT IN ({_UNRESOLVED_PATIENTS})")),
    ),
    "dead_letters": (
        ("dead_letters", _chunked("dead_letters", "received_at < :before")),
        ("dead_letter_counts", _chunked("dead_letter_counts", "last_t < :before")),
    ),
    "notifications": (
        ("outbox", _chunked("outbox", f"created_t < :before AND status NOT IN {_WAITING} "
                                      f"AND incident_id NOT IN ({_UNRESOLVED_INCIDENTS})")),
    ),
    "explanations": (
        ("explanations", _chunked("explanations", f"created_t < :before AND alert_id NOT IN ({_KEPT_ALERTS})")),
    ),
    "audit": (("access_audit", _chunked("access_audit", "t < :before")),),
}


@dataclass(frozen=True, slots=True)
class Retention:
    """Days kept per kind; 0 (or a kind not named) keeps it forever."""

    days: Mapping[str, float]

    def cutoffs(self, now: float) -> dict[str, float]:
        """The time before which each purged kind goes, for kinds with a retention."""
        return {kind: now - self.days[kind] * DAY_S for kind in KINDS if self.days.get(kind, 0) > 0}


class Purger:
    """Deletes one chunk of one kind at a time. In the embedded runtime, call it on the store's
    writer thread; on PostgreSQL (the scaled path) any thread will do: each chunk is its own
    transaction, and two purgers at once delete each row once (the second finds it gone)."""

    def __init__(self, engine: Engine, chunk_rows: int = 2000) -> None:
        if engine.dialect.name not in ROW_ADDRESS:
            raise ValueError(f"no retention purge for {engine.dialect.name} (SQLite and PostgreSQL only)")
        self.engine = engine
        self.chunk_rows = chunk_rows
        self.row = ROW_ADDRESS[engine.dialect.name]

    def chunk(self, kind: str, before_t: float) -> dict[str, int]:
        """One transaction: at most chunk_rows rows of each of the kind's tables older than
        `before_t` (and not kept, see the module). Returns rows deleted per table."""
        deleted: dict[str, int] = {}
        with self.engine.begin() as conn:
            for table, statement in STATEMENTS[kind]:
                deleted[table] = int(conn.execute(text(statement.format(row=self.row)), {"before": before_t, "limit": self.chunk_rows})
                                     .rowcount or 0)
        return deleted
