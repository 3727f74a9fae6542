"""The access audit: who read or did what to which patient's data, when, from where, and how it ended.

Rows go into `access_audit` (tables.py), which the database keeps append-only (migrate.py's
triggers). One request that touches many patients (a list of incidents) is one insert of many
rows. `record` keeps the write off the event loop: in the embedded runtime it runs on the one
writer thread (`lane`, like DeskStore's writes), elsewhere (PostgreSQL, the notifier) in a worker
thread. `export` streams the rows back in order, in pages, for `vigil audit export`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from vigil.core.identity import Principal
from vigil.shell.stores.desk_store import WriteLane
from vigil.shell.stores.tables import access_audit

ANONYMOUS = "anonymous"
EXPORT_COLUMNS = tuple(c.name for c in access_audit.columns)


def outcome_of(status: int) -> str:
    """The outcome column, in words, from the HTTP status the request was answered with."""
    if status < 400:
        return "ok"
    return {401: "denied", 403: "denied", 404: "not_found", 409: "conflict"}.get(
        status, "invalid" if status < 500 else "error")


def _clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


class AuditTrail:
    """Appends access rows; reads them back for the export."""

    def __init__(self, engine: Engine, lane: WriteLane | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lane = lane
        self.clock = clock

    def rows(self, principal: Principal | None, action: str, patient_ids: Iterable[str | None], target: str = "",
             outcome: str = "ok", address: str | None = None, status: int | None = None) -> list[dict[str, Any]]:
        """One row per distinct patient (one row with no patient when there is none), in a stable order."""
        patients = sorted({p for p in patient_ids if p is not None}) or [None]
        who = ({"subject": ANONYMOUS, "name": ANONYMOUS, "role": "none", "via": "none"} if principal is None else
               {"subject": principal.subject, "name": principal.name, "role": str(principal.role), "via": principal.via})
        who = {k: _clip(v, access_audit.c[k].type.length) for k, v in who.items()}
        now = self.clock()
        return [{"t": now, **who, "patient_id": _clip(p, 64), "action": action[:32], "target": target[:256],
                 "outcome": outcome[:16], "status": status, "address": _clip(address, 64)} for p in patients]

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Insert the rows in one statement and one transaction (on the caller's thread, or the lane)."""
        if not rows:
            return

        def insert_rows() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(access_audit), rows)

        insert_rows() if self.lane is None else self.lane(insert_rows)

    async def record(self, principal: Principal | None, action: str, patient_ids: Iterable[str | None],
                     target: str = "", outcome: str = "ok", address: str | None = None,
                     status: int | None = None) -> int:
        """Append the rows of one access, off the event loop; returns how many were written."""
        rows = self.rows(principal, action, patient_ids, target, outcome, address, status)
        await asyncio.to_thread(self.write, rows)
        return len(rows)

    def export(self, *, since: float | None = None, until: float | None = None, patient_id: str | None = None,
               page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row matching, oldest first, read `page` rows at a time (keyset on id: a long export
        holds no transaction open and sees rows appended meanwhile only if they match)."""
        query = select(access_audit).order_by(access_audit.c.id).limit(page)
        if since is not None:
            query = query.where(access_audit.c.t >= since)
        if until is not None:
            query = query.where(access_audit.c.t < until)
        if patient_id is not None:
            query = query.where(access_audit.c.patient_id == patient_id)
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query.where(access_audit.c.id > after))]
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["id"]
