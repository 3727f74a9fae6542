"""What the patient app reads and writes: the patient's messages (Vigil's delivered patient texts and
the care team's own), read receipts, answers to alerts, and the phone's Web Push subscriptions.

SQLite and PostgreSQL alike. Writes go through `lane` (the embedded runtime's one writer thread:
SQLite allows one writer at a time); reads on the caller's thread.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from vigil.shell.stores.patient_tables import care_messages, message_reads, patient_replies, push_subscriptions
from vigil.shell.stores.sql import _insert
from vigil.shell.stores.tables import device_status, outbox, readings

T = TypeVar("T")
DELIVERED = ("sent",)


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


class PatientAppStore:
    def __init__(self, engine: Engine, lane: Callable[[Callable[[], T]], T] | None = None) -> None:
        self.engine = engine
        self.lane = lane

    def _write(self, write: Callable[[], T]) -> T:
        return write() if self.lane is None else self.lane(write)

    # -- messages -----------------------------------------------------------------------------

    def messages(self, patient_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: every patient text Vigil delivered (one per incident event, whichever
        channels carried it) and every care-team message, each with when the patient read it."""
        vigil = select(outbox.c.key, outbox.c.incident_id, outbox.c.event, outbox.c.revision, outbox.c.body,
                       outbox.c.payload, outbox.c.created_t, outbox.c.sent_t, outbox.c.severity).where(
            outbox.c.recipient_id == f"patient:{patient_id}", outbox.c.audience == "patient",
            outbox.c.status.in_(DELIVERED)).order_by(
            outbox.c.created_t.desc(), (outbox.c.channel != "app")).limit(limit * 3)  # the app's copy first
        team = select(care_messages).where(care_messages.c.patient_id == patient_id).order_by(
            care_messages.c.t.desc()).limit(limit)
        with self.engine.connect() as conn:
            reads = self.reads(patient_id, conn)
            out: list[dict[str, Any]] = []
            seen: set[tuple[str, str, int]] = set()
            for row in conn.execute(vigil):
                once = (row.incident_id, row.event, row.revision)
                if once in seen:
                    continue
                seen.add(once)
                alert = (row.payload or {}).get("alert") or {}
                out.append({"key": row.key, "from": "vigil", "author": "Vigil", "body": row.body,
                            "t": row.sent_t or row.created_t, "incident_id": row.incident_id,
                            "alert_id": alert.get("alert_id"), "severity": row.severity,
                            "read_t": reads.get(row.key)})
            for row in conn.execute(team):
                row = row._mapping
                out.append({"key": row["key"], "from": "care_team", "author": row["author_name"], "body": row["body"],
                            "t": row["t"], "incident_id": None, "alert_id": None, "severity": None,
                            "read_t": reads.get(row["key"])})
        out.sort(key=lambda m: m["t"], reverse=True)
        return out[:limit]

    def reads(self, patient_id: str, conn: Any = None) -> dict[str, float]:
        query = select(message_reads.c.message_key, message_reads.c.read_t).where(message_reads.c.patient_id == patient_id)
        if conn is not None:
            return {key: t for key, t in conn.execute(query)}
        with self.engine.connect() as own:
            return {key: t for key, t in own.execute(query)}

    def message_patient(self, key: str) -> str | None:
        """Whose message `key` is (an outbox row to a patient, or a care message); None: no such message."""
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox.c.recipient_id).where(outbox.c.key == key, outbox.c.audience == "patient",
                                                                   outbox.c.status.in_(DELIVERED))).first()
            if row is not None:
                return row[0].split(":", 1)[1] if row[0].startswith("patient:") else None
            row = conn.execute(select(care_messages.c.patient_id).where(care_messages.c.key == key)).first()
            return None if row is None else row[0]

    def mark_read(self, patient_id: str, key: str, t: float) -> float:
        """The first reading is the receipt: reading again changes nothing. Returns the receipt's time."""
        def write() -> float:
            with self.engine.begin() as conn:
                conn.execute(_insert(self.engine, message_reads).on_conflict_do_nothing(),
                             {"patient_id": patient_id, "message_key": key, "read_t": t})
                return float(conn.execute(select(message_reads.c.read_t).where(
                    message_reads.c.patient_id == patient_id, message_reads.c.message_key == key)).scalar_one())
        return self._write(write)

    def add_care_message(self, patient_id: str, author: str, author_name: str, body: str, t: float) -> dict[str, Any]:
        row = {"key": "cm-" + secrets.token_hex(12), "patient_id": patient_id, "author": author,
               "author_name": author_name, "body": body, "t": t}

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(care_messages).values(**row))
        self._write(write)
        return row

    def device_states(self, device_ids: list[str]) -> list[dict[str, Any]]:
        """The last status each device reported (online/offline, battery), newest first."""
        if not device_ids:
            return []
        query = select(device_status).where(device_status.c.device_id.in_(device_ids)).order_by(device_status.c.t.desc())
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def latest_battery(self, patient_id: str, device_ids: list[str]) -> float | None:
        """The battery level the newest reading carried (devices that send no status message report it
        there); None when no stored reading has one (the scaled path keeps readings in InfluxDB)."""
        if not device_ids:
            return None
        query = select(readings.c.battery).where(readings.c.patient_id == patient_id,
                                                 readings.c.device_id.in_(device_ids),
                                                 readings.c.battery.is_not(None)).order_by(readings.c.t.desc()).limit(1)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    # -- answers to alerts ------------------------------------------------------------------------

    def record_reply(self, patient_id: str, incident_id: str, alert_id: str | None, answer: str, t: float,
                     subject: str) -> None:
        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(patient_replies).values(patient_id=patient_id, incident_id=incident_id,
                                                            alert_id=alert_id, answer=answer, t=t, subject=subject))
        self._write(write)

    def replies(self, patient_id: str, limit: int = 100) -> list[dict[str, Any]]:
        query = select(patient_replies).where(patient_replies.c.patient_id == patient_id).order_by(
            patient_replies.c.t.desc(), patient_replies.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- Web Push subscriptions -------------------------------------------------------------------

    def subscribe(self, patient_id: str, endpoint: str, p256dh: str, auth: str, language: str, t: float) -> None:
        """Save (or move to this patient, with new keys) one browser's subscription."""
        key = endpoint_hash(endpoint)
        row = {"endpoint_hash": key, "patient_id": patient_id, "endpoint": endpoint, "p256dh": p256dh, "auth": auth,
               "language": language, "created_t": t, "last_ok_t": None}

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(push_subscriptions).where(push_subscriptions.c.endpoint_hash == key))
                conn.execute(insert(push_subscriptions).values(**row))
        self._write(write)

    def subscriptions(self, patient_id: str) -> list[dict[str, Any]]:
        query = select(push_subscriptions).where(push_subscriptions.c.patient_id == patient_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def unsubscribe(self, endpoint: str, patient_id: str | None = None) -> int:
        """Forget a subscription (the patient's own, or one the push service says is gone)."""
        where = [push_subscriptions.c.endpoint_hash == endpoint_hash(endpoint)]
        if patient_id is not None:
            where.append(push_subscriptions.c.patient_id == patient_id)

        def write() -> int:
            with self.engine.begin() as conn:
                return conn.execute(delete(push_subscriptions).where(*where)).rowcount
        return self._write(write)

    def pushed(self, endpoint: str, t: float) -> None:
        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(push_subscriptions).where(
                    push_subscriptions.c.endpoint_hash == endpoint_hash(endpoint)).values(last_ok_t=t))
        self._write(write)
