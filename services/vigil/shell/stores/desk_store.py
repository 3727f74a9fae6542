"""The alert desk's queries: incidents, audit trail, the outbox's delivery states, explanations.

Writes that belong to a processing batch go through SqlStore.write (one transaction with the
alerts they report). What lives here changes one row at a time: claiming outbox rows for
delivery, marking them sent or failed, saving an explanation. SQLite and PostgreSQL alike;
on PostgreSQL several notifiers can claim rows side by side (FOR UPDATE SKIP LOCKED).

In the embedded runtime these writes go to the same SQLite file as the batches, so they run on
the one writer thread (`lane`: BackgroundWriter.run): SQLite allows one writer at a time, and
a second one could fail with "database is locked" under load.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine

from vigil.core.events import Alert
from vigil.core.incident import Incident
from vigil.shell.stores.rows import ExplanationRow, OutboxRow
from vigil.shell.stores.tables import alerts, desk_inbox, explanations, incident_alerts, incident_audit, incidents, outbox
from vigil.shell.stores.sql import _insert, outbox_columns

# A row whose deliver_after is this much later than its creation was held (quiet hours), not
# just scheduled: retries move next_attempt_t, never deliver_after.
HELD_AFTER_S = 1.0
# Outbox states of a model-written patient text under VIGIL_APPROVE_PATIENT_TEXTS: waiting for a
# clinician, and refused by one. The dispatcher sends neither.
HELD_FOR_APPROVAL = "held"
TEXT_REFUSED = "refused"
T = TypeVar("T")
WriteLane = Callable[[Callable[[], T]], T]

# The alerts columns that are the core's Alert (the rest, state and texts, are the store's).
_ALERT_FIELDS = tuple(name for name in Alert.__dataclass_fields__ if name in alerts.c)


class DeskStore:
    def __init__(self, engine: Engine, lane: WriteLane | None = None) -> None:
        """`lane` runs a write where it must run (the embedded runtime's writer thread); by
        default, here and now (PostgreSQL)."""
        self.engine = engine
        self.lane = lane
        explanation_insert = _insert(engine, explanations)
        self._explanation = explanation_insert.on_conflict_do_update(
            index_elements=[explanations.c.alert_id, explanations.c.language],
            set_={c.name: getattr(explanation_insert.excluded, c.name) for c in explanations.columns
                  if c.name not in ("alert_id", "language")},
        )

    # -- incidents ----------------------------------------------------------------------------

    def unresolved_incidents(self) -> list[Incident]:
        query = select(incidents.c.doc).where(incidents.c.state != "resolved")
        with self.engine.connect() as conn:
            return [Incident.from_dict(row[0]) for row in conn.execute(query)]

    def incidents(self, *, state: str | None = None, patient_id: str | None = None, limit: int = 200,
                  patient_ids: Collection[str] | None = None, with_doc: bool = True) -> list[dict[str, Any]]:
        """Newest first; `patient_ids`: only these patients (the caller's scope), None: all.
        `with_doc=False` leaves out the whole-incident document (the list API never shows it, and
        reading and decoding it was most of a list's cost)."""
        columns = incidents.columns if with_doc else [c for c in incidents.columns if c.name != "doc"]
        query = select(*columns).order_by(incidents.c.updated_t.desc()).limit(limit)
        if patient_ids is not None:
            query = query.where(incidents.c.patient_id.in_(sorted(patient_ids)))
        if state:
            query = query.where(incidents.c.state == state)
        if patient_id:
            query = query.where(incidents.c.patient_id == patient_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
            return None if row is None else dict(row._mapping)

    def incident_id_for_alert(self, alert_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(incident_alerts.c.incident_id).where(incident_alerts.c.alert_id == alert_id)).scalar()

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        query = select(incident_audit).where(incident_audit.c.incident_id == incident_id).order_by(incident_audit.c.revision)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def alerts_by_id(self, alert_ids: Iterable[str]) -> dict[str, Alert]:
        """The stored alerts with these ids, as the core's alerts (to restore the desk)."""
        ids = list(alert_ids)
        if not ids:
            return {}
        query = select(*(alerts.c[name] for name in _ALERT_FIELDS)).where(alerts.c.alert_id.in_(ids))
        with self.engine.connect() as conn:
            return {row.alert_id: _alert(row._mapping) for row in conn.execute(query)}

    def seen_changes(self, keys: list[tuple[str, str, float]]) -> set[tuple[str, str, float]]:
        """Which (alert_id, event, t) the desk has already taken in."""
        if not keys:
            return set()
        ids = list({k[0] for k in keys})
        query = select(desk_inbox.c.alert_id, desk_inbox.c.event, desk_inbox.c.t).where(desk_inbox.c.alert_id.in_(ids))
        with self.engine.connect() as conn:
            stored = {(a, e, round(float(t), 3)) for a, e, t in conn.execute(query)}
        return {k for k in keys if (k[0], k[1], round(k[2], 3)) in stored}

    # -- the outbox ---------------------------------------------------------------------------

    def claim_due(self, now: float, limit: int = 50, lease_s: float = 60.0) -> list[dict[str, Any]]:
        """Take up to `limit` rows due now (or whose sender died mid-send: lease expired)."""
        due = and_(outbox.c.deliver_after <= now, outbox.c.next_attempt_t <= now,
                   or_(outbox.c.status == "pending", and_(outbox.c.status == "sending", outbox.c.lease_until < now)))
        query = select(outbox).where(due).order_by(outbox.c.critical.desc(), outbox.c.created_t).limit(limit)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)

        def claim() -> list[dict[str, Any]]:
            with self.engine.begin() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
                rows = self._drop_stale_held(conn, rows)
                for row in rows:
                    row["attempts"] += 1
                    conn.execute(update(outbox).where(outbox.c.key == row["key"]).values(
                        status="sending", attempts=row["attempts"], lease_until=now + lease_s))
            return rows

        return self._write(claim)

    def _write(self, write: Callable[[], T]) -> T:
        return write() if self.lane is None else self.lane(write)

    @staticmethod
    def _drop_stale_held(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Held messages (deferred by quiet hours) must still be true when they go out: one whose
        incident was resolved meanwhile, or that a later message of the same incident to the same
        recipient and channel superseded (a "very soon" after its "soon"), is dropped, not sent.
        Marked `dropped` with the reason, for the record."""
        held = [r for r in rows if r["event"] != "explanation" and r["deliver_after"] > r["created_t"] + HELD_AFTER_S]
        if not held:
            return rows
        ids = list({r["incident_id"] for r in held})
        with_state = select(incidents.c.incident_id, incidents.c.state).where(incidents.c.incident_id.in_(ids))
        states = {i: st for i, st in conn.execute(with_state)}
        later = select(outbox.c.incident_id, outbox.c.recipient_id, outbox.c.channel, func.max(outbox.c.revision)).where(
            outbox.c.incident_id.in_(ids), outbox.c.event != "explanation", outbox.c.status != "dropped",
        ).group_by(outbox.c.incident_id, outbox.c.recipient_id, outbox.c.channel)
        latest = {(i, rcp, ch): rev for i, rcp, ch, rev in conn.execute(later)}
        dropped: dict[str, str] = {}
        for r in held:
            if states.get(r["incident_id"]) == "resolved":
                dropped[r["key"]] = "dropped: incident resolved while the message was held"
            elif latest.get((r["incident_id"], r["recipient_id"], r["channel"]), 0) > r["revision"]:
                dropped[r["key"]] = "dropped: superseded by a later message while held"
        for key, reason in dropped.items():
            conn.execute(update(outbox).where(outbox.c.key == key).values(status="dropped", lease_until=None, last_error=reason))
        return [r for r in rows if r["key"] not in dropped]

    def mark_sent(self, key: str, t: float, provider_id: str | None) -> None:
        self._set(key, status="sent", sent_t=t, provider_id=provider_id, lease_until=None, last_error=None)

    def mark_retry(self, key: str, next_attempt_t: float, error: str) -> None:
        self._set(key, status="pending", next_attempt_t=next_attempt_t, lease_until=None, last_error=error[:500])

    def mark_failed(self, key: str, error: str, t: float | None = None) -> None:
        self._set(key, status="failed", lease_until=None, last_error=error[:500], failed_t=t)

    def failed_since(self, since: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Rows failed for good at or after `since`, with every row of the same incident event,
        recipient and revision (so the caller can tell who was reached on no channel)."""
        failed = (select(outbox.c.incident_id, outbox.c.recipient_id, outbox.c.event, outbox.c.revision)
                  .where(outbox.c.status == "failed", outbox.c.failed_t >= since).distinct().limit(limit))
        with self.engine.connect() as conn:
            keys = [tuple(row) for row in conn.execute(failed)]
            if not keys:
                return []
            rows = conn.execute(select(outbox).where(outbox.c.incident_id.in_({k[0] for k in keys}))).all()
        wanted = set(keys)
        return [dict(row._mapping) for row in rows
                if (row.incident_id, row.recipient_id, row.event, row.revision) in wanted]

    def _set(self, key: str, **values: Any) -> None:
        def set_values() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(outbox).where(outbox.c.key == key).values(**values))

        self._write(set_values)

    def outbox_rows(self, *, incident_id: str | None = None, status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query = select(outbox).order_by(outbox.c.created_t).limit(limit)
        if incident_id:
            query = query.where(outbox.c.incident_id == incident_id)
        if status:
            query = query.where(outbox.c.status == status)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def due_count(self, now: float) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.status.in_(("pending", "sending")),
                                                               outbox.c.deliver_after <= now)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- explanations -------------------------------------------------------------------------

    def save_explanation(self, row: ExplanationRow, outbox_rows: list[OutboxRow] | None = None,
                         held_rows: list[OutboxRow] | None = None) -> None:
        """The explanation and the follow-up messages that carry it, in one transaction.
        `held_rows` wait (status `held`) for a clinician's approval (`decide_held`)."""
        def save() -> None:
            with self.engine.begin() as conn:
                conn.execute(self._explanation, row._asdict())
                insert = _insert(self.engine, outbox).on_conflict_do_nothing()
                if outbox_rows:
                    conn.execute(insert, outbox_columns(outbox_rows))
                if held_rows:
                    conn.execute(insert, [dict(c, status=HELD_FOR_APPROVAL) for c in outbox_columns(held_rows)])

        self._write(save)

    # -- model texts held for a clinician's approval ------------------------------------------

    def held_texts(self, *, patient_ids: Iterable[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Model-written patient texts waiting for approval, oldest first, with their incident's state
        and the template text the patient already has."""
        query = (select(outbox.c.key, outbox.c.incident_id, outbox.c.patient_id, outbox.c.language, outbox.c.severity,
                        outbox.c.body, outbox.c.payload, outbox.c.created_t, incidents.c.state.label("incident_state"))
                 .join(incidents, incidents.c.incident_id == outbox.c.incident_id, isouter=True)
                 .where(outbox.c.status == HELD_FOR_APPROVAL).order_by(outbox.c.created_t).limit(limit))
        if patient_ids is not None:
            query = query.where(outbox.c.patient_id.in_(list(patient_ids)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def held_text(self, key: str) -> dict[str, Any] | None:
        """One outbox row held for approval (any status once decided), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.key == key, outbox.c.text_source == "llm",
                                                    outbox.c.audience == "patient")).first()
        return None if row is None else dict(row._mapping)

    def decide_held(self, key: str, approve: bool, decided_by: dict[str, str], now: float) -> bool:
        """Release a held text for delivery (approve) or refuse it for good: only while it is still
        held, and approving only while its incident is not resolved (the text would no longer be
        true). The decision and who made it go into the row's payload. False: nothing changed."""
        def decide() -> bool:
            with self.engine.begin() as conn:
                row = conn.execute(select(outbox.c.payload, incidents.c.state)
                                   .join(incidents, incidents.c.incident_id == outbox.c.incident_id, isouter=True)
                                   .where(outbox.c.key == key, outbox.c.status == HELD_FOR_APPROVAL)).first()
                if row is None or (approve and row.state == "resolved"):
                    return False
                payload = dict(row.payload, review={"approved": approve, "t": now, **decided_by})
                values = ({"status": "pending", "next_attempt_t": now} if approve
                          else {"status": TEXT_REFUSED})
                done = conn.execute(update(outbox).where(outbox.c.key == key, outbox.c.status == HELD_FOR_APPROVAL)
                                    .values(payload=payload, **values))
                return done.rowcount == 1

        return self._write(decide)

    def explanations_for(self, alert_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(select(explanations).where(explanations.c.alert_id == alert_id))]


def _alert(row: Any) -> Alert:
    """An alerts row as the core's Alert (a row from an older version may lack its context)."""
    alert = Alert(**row)
    alert.contributors = alert.contributors or []
    alert.baselines = alert.baselines or {}
    alert.trends = alert.trends or {}
    return alert
