"""The access audit: who read or did what to which patient's data, when, from where, and how it ended.

Rows go into `access_audit` (tables.py), which the database keeps append-only (migrate.py's
triggers). One access is one row, however many patients it showed: a list of 200 incidents
names its patients in the row's `patients` column (" pt-1 pt-2 … "), not in 200 rows, because
the indexed insert of each row, not the statement, is what a list read waited for (6-10 ms for
200 rows on SQLite against 0.27 ms for one; docs/benchmarks.md, issue 11). `patient_id` still
holds the patient when there is exactly one. `export` gives the audit back as before: one line
per access and patient, and a patient's export finds every access that showed them. `record` keeps the write off the event loop: in the embedded runtime it runs on the one
writer thread (`lane`, like DeskStore's writes), elsewhere (PostgreSQL, the notifier) in a worker
thread. `export` streams the lines back in order, in pages, for `vigil audit export`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.engine import Engine

from vigil.core.identity import Principal
from vigil.shell.stores.desk_store import WriteLane
from vigil.shell.stores.tables import access_audit

ANONYMOUS = "anonymous"
LISTED = "patients"  # the column naming every patient of an access; expanded on export, never exported
EXPORT_COLUMNS = tuple(c.name for c in access_audit.columns if c.name != LISTED)


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
        """The row of one access: every distinct patient shown in `patients` (sorted, space-delimited,
        a space at each end so a search for " pt-1 " cannot match "pt-10"), `patient_id` set when
        there is exactly one. An id that cannot be listed that way (blank, or holding whitespace;
        the roster's pattern allows neither) gets a row of its own with only `patient_id`, so it is
        still found and never split into ids that are not its own."""
        shown = sorted({_clip(p, 64) for p in patient_ids if p is not None})
        listable = [p for p in shown if p.split() == [p]]
        odd = [p for p in shown if p.split() != [p]]
        who = ({"subject": ANONYMOUS, "name": ANONYMOUS, "role": "none", "via": "none"} if principal is None else
               {"subject": principal.subject, "name": principal.name, "role": str(principal.role), "via": principal.via})
        who = {k: _clip(v, access_audit.c[k].type.length) for k, v in who.items()}
        common = {"t": self.clock(), **who, "action": action[:32], "target": target[:256], "outcome": outcome[:16],
                  "status": status, "address": _clip(address, 64)}
        rows = [{**common, "patient_id": p, LISTED: None} for p in odd]
        if listable or not odd:
            rows.insert(0, {**common, "patient_id": listable[0] if len(listable) == 1 else None,
                            LISTED: f" {' '.join(listable)} " if listable else None})
        return rows

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
        """Append the row of one access, off the event loop; returns how many rows were written
        (one, but for patient ids that cannot be listed: see `rows`)."""
        rows = self.rows(principal, action, patient_ids, target, outcome, address, status)
        await asyncio.to_thread(self.write, rows)
        return len(rows)

    def export(self, *, since: float | None = None, until: float | None = None, patient_id: str | None = None,
               page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every access matching, oldest first, one line per (access, patient): a row naming many
        patients is expanded into one line each, with the same id, time and caller (filtered by
        `patient_id`: only that patient's line). Rows are read `page` at a time (keyset on id: a long
        export holds no transaction open and sees rows appended meanwhile only if they match).

        The patient filter is `patient_id = X OR patients LIKE '% X %'`, with X's `%`, `_` and the
        escape character escaped so that an id is matched only as itself; the LIKE cannot use an
        index, so a patient's export scans the table (an occasional, offline read: the price of
        the cheap write every list read pays)."""
        query = select(access_audit).order_by(access_audit.c.id).limit(page)
        if since is not None:
            query = query.where(access_audit.c.t >= since)
        if until is not None:
            query = query.where(access_audit.c.t < until)
        if patient_id is not None:
            query = query.where(or_(access_audit.c.patient_id == patient_id,
                                    access_audit.c[LISTED].contains(f" {patient_id} ", autoescape=True)))
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query.where(access_audit.c.id > after))]
            for row in rows:
                yield from _lines(row, patient_id)
            if len(rows) < page:
                return
            after = rows[-1]["id"]


def _lines(row: dict[str, Any], patient_id: str | None) -> Iterator[dict[str, Any]]:
    """One stored row as export lines: one per patient it names (only `patient_id`'s, if given)."""
    listed = row.pop(LISTED, None)
    if not listed:
        yield row  # no patient, one that could not be listed, or a row from before `patients`
        return
    for patient in listed.split():
        if patient_id is None or patient == patient_id:
            yield {**row, "patient_id": patient}
