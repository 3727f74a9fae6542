"""Per-minute rollups and latest values, merged into the SQL store in the batch's own transaction.

Why it is correct under replays and late readings:

- Only the rows an insert actually added are rolled up. Readings and scores are inserted with
  "on conflict do nothing … RETURNING", and the database returns exactly the rows it stored: a
  reading written twice (a replayed batch, a device's redelivery, the same sample twice in one
  batch) comes back once, the first time, and is counted once.
- The merge is commutative and associative (min of mins, max of maxes, sums and counts added), so
  a late reading lands in its own minute whatever order batches arrive in, and the result equals
  a scan of the raw rows (tests/unit/shell/stores/test_rollups.py holds it to one).
- `vital_latest` is replaced only by a strictly newer time, so a late reading never hides a newer one.

Everything happens inside the caller's transaction (`SqlStore.write`): a batch's readings and its
rollups become durable together or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case
from sqlalchemy.engine import Engine

from vigil.shell.stores.tables import ROLLUP_METRICS, vital_latest, vital_rollups

ROLLUP_STEP_S = 60.0
VITALS = ("hr", "spo2", "rr", "temp", "sbp", "dbp")
# What RETURNING hands back of each inserted reading, in this order.
READING_RETURNING = ("patient_id", "t", *VITALS, "news2", "news2_partial", "flags")
_FOLDED = (*VITALS, "news2")  # READING_RETURNING[2:9]


def minute_of(t: float) -> float:
    """The start of the rollup minute holding `t` (epoch seconds, aligned to the epoch)."""
    return math.floor(t / ROLLUP_STEP_S) * ROLLUP_STEP_S


def _empty_rollup(patient_id: str, minute: float) -> dict[str, Any]:
    row: dict[str, Any] = {"patient_id": patient_id, "t": minute, "news2_partial_n": 0, "flagged_n": 0, "readings_n": 0}
    for metric in ROLLUP_METRICS:
        row[f"{metric}_min"] = None
        row[f"{metric}_max"] = None
        row[f"{metric}_sum"] = 0.0
        row[f"{metric}_n"] = 0
    return row


def _fold(row: dict[str, Any], metric: str, values: list[Any]) -> None:
    low, high, least, most = row[f"{metric}_min"], row[f"{metric}_max"], min(values), max(values)
    row[f"{metric}_min"] = least if low is None or least < low else low
    row[f"{metric}_max"] = most if high is None or most > high else high
    row[f"{metric}_sum"] += float(sum(values))
    row[f"{metric}_n"] += len(values)


def _add(row: dict[str, Any], metric: str, value: float) -> None:
    low, high = row[f"{metric}_min"], row[f"{metric}_max"]
    row[f"{metric}_min"] = value if low is None or value < low else low
    row[f"{metric}_max"] = value if high is None or value > high else high
    row[f"{metric}_sum"] += value
    row[f"{metric}_n"] += 1


class Rollup:
    """A batch's new readings and scores, folded into minute rows and latest values."""

    def __init__(self) -> None:
        self.minutes: dict[tuple[str, float], dict[str, Any]] = {}
        self.latest: dict[tuple[str, str], tuple[float, float, bool | None]] = {}

    def _minute(self, patient_id: str, t: float) -> dict[str, Any]:
        key = (patient_id, minute_of(t))
        row = self.minutes.get(key)
        if row is None:
            row = self.minutes[key] = _empty_rollup(*key)
        return row

    def _newest(self, patient_id: str, metric: str, t: float, value: float, partial: bool | None = None) -> None:
        seen = self.latest.get((patient_id, metric))
        if seen is None or t > seen[0]:
            self.latest[(patient_id, metric)] = (t, value, partial)

    def add_readings(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in READING_RETURNING order: each an inserted reading.

        Grouped by patient and minute first, then each column folded with the builtins (min, max,
        sum over a list run in C): per reading this costs about a third of adding values one by one."""
        groups: dict[tuple[str, float], list[Sequence[Any]]] = {}
        for values in rows:
            key = (values[0], math.floor(values[1] / ROLLUP_STEP_S) * ROLLUP_STEP_S)
            members = groups.get(key)
            if members is None:
                groups[key] = [values]
            else:
                members.append(values)
        for (patient_id, minute), members in groups.items():
            row = self._minute(patient_id, minute)
            columns = list(zip(*members))
            times = columns[1]
            row["readings_n"] += len(members)
            row["flagged_n"] += len(members) - columns[-1].count("") - columns[-1].count(None)
            for at, metric in enumerate(_FOLDED, start=2):
                column = columns[at]
                if column.count(None) == len(column):
                    continue
                _fold(row, metric, [v for v in column if v is not None])
                t, newest = max((t, i) for i, (t, v) in enumerate(zip(times, column)) if v is not None)
                partial = None
                if metric == "news2":
                    partial = bool(columns[at + 1][newest])  # the newest score's own flag
                    row["news2_partial_n"] += sum(1 for v, p in zip(column, columns[at + 1]) if v is not None and p)
                self._newest(patient_id, metric, float(t), float(column[newest]), partial)

    def add_scores(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (patient_id, t, risk): each an inserted model score."""
        for patient_id, t, risk in rows:
            _add(self._minute(patient_id, float(t)), "risk", float(risk))
            self._newest(patient_id, "risk", float(t), float(risk))

    def minute_rows(self) -> list[dict[str, Any]]:
        return list(self.minutes.values())

    def latest_rows(self) -> list[dict[str, Any]]:
        return [{"patient_id": patient_id, "vital": metric, "t": t, "value": value, "partial": partial}
                for (patient_id, metric), (t, value, partial) in self.latest.items()]


def _insert(engine: Engine, table: Any) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def rollup_upsert(engine: Engine) -> Any:
    """Insert a minute row, or merge it into the stored one: min of mins, max of maxes, sums added."""
    stmt = _insert(engine, vital_rollups)
    new, old = stmt.excluded, vital_rollups.c
    merged: dict[str, Any] = {}
    for metric in ROLLUP_METRICS:
        low, high = f"{metric}_min", f"{metric}_max"
        merged[low] = case((new[low].is_(None), old[low]), (old[low].is_(None) | (new[low] < old[low]), new[low]),
                           else_=old[low])
        merged[high] = case((new[high].is_(None), old[high]), (old[high].is_(None) | (new[high] > old[high]), new[high]),
                            else_=old[high])
        for total in (f"{metric}_sum", f"{metric}_n"):
            merged[total] = old[total] + new[total]
    for count in ("news2_partial_n", "flagged_n", "readings_n"):
        merged[count] = old[count] + new[count]
    return stmt.on_conflict_do_update(index_elements=[old.patient_id, old.t], set_=merged)


def latest_upsert(engine: Engine) -> Any:
    """Insert a patient's latest value of a vital, or replace it only with a strictly newer one."""
    stmt = _insert(engine, vital_latest)
    return stmt.on_conflict_do_update(
        index_elements=[vital_latest.c.patient_id, vital_latest.c.vital],
        set_={"t": stmt.excluded.t, "value": stmt.excluded.value, "partial": stmt.excluded.partial},
        where=stmt.excluded.t > vital_latest.c.t,
    )
