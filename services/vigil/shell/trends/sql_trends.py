"""Trends from the SQL store's rollups (SQLite in the embedded runtime; PostgreSQL works the same).

`series` reads at most one row per minute of the window (`vital_rollups`, keyed by patient and
minute) and merges them into coarser buckets in the query: a 7-day chart reads 10,080 rows
whatever the source rate, instead of 604,800 at 1 Hz. `latest` reads `vital_latest`, one row per
patient and vital. `raw_series` scans `readings` the way a store without rollups would: the
benchmark's baseline, and the contract tests' reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from vigil.shell.trends.model import (
    SPARKLINE_SPAN_S,
    SPARKLINE_STEP_S,
    SPARKLINE_VITALS,
    Bucket,
    Latest,
    PatientLatest,
    WardRow,
    check_vital,
    sparkline_vitals,
    window,
)


def _bucket(row: Any, partial: bool | None) -> Bucket:
    t, low, high, total, count = row[:5]
    return Bucket(float(t), float(low), float(high), float(total) / int(count), int(count), partial)


class SqlTrends:
    """`TrendStore` over `vital_rollups` and `vital_latest` (the store's engine, read-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Seconds as a whole number, rounded down, in each dialect (PostgreSQL's CAST rounds).
        self._whole = "CAST(t AS INTEGER)" if engine.dialect.name == "sqlite" else "CAST(floor(t) AS BIGINT)"

    def series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        check_vital(vital)
        low, high = window(start, end, step)
        v = vital
        query = text(
            f"SELECT {self._whole} / :step * :step AS b, min({v}_min), max({v}_max), sum({v}_sum), sum({v}_n), "
            f"sum(news2_partial_n) FROM vital_rollups WHERE patient_id = :p AND t >= :lo AND t < :hi AND {v}_n > 0 "
            "GROUP BY b ORDER BY b")
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"p": patient_id, "lo": low, "hi": high, "step": int(step)}).all()
        return [_bucket(row, bool(row[5]) if vital == "news2" else None) for row in rows]

    def latest(self, patient_ids: list[str]) -> dict[str, PatientLatest]:
        found: dict[str, dict[str, Latest]] = {patient_id: {} for patient_id in patient_ids}
        query = text("SELECT patient_id, vital, t, value, partial FROM vital_latest WHERE patient_id IN :ids").bindparams(
            bindparam("ids", expanding=True))
        with self.engine.connect() as conn:  # all rows at once: iterating fetches them one by one (psycopg)
            for patient_id, vital, t, value, partial in conn.execute(query, {"ids": list(patient_ids)}).all():
                found[patient_id][vital] = Latest(float(value), float(t), None if partial is None else bool(partial))
        return {patient_id: PatientLatest(patient_id, vitals) for patient_id, vitals in found.items()}

    def ward(self, patient_ids: list[str], now: float, vitals: Sequence[str] = SPARKLINE_VITALS) -> list[WardRow]:
        asked = sparkline_vitals(vitals)
        latest = self.latest(patient_ids)
        low, high = window(now - SPARKLINE_SPAN_S, now, SPARKLINE_STEP_S)
        columns = ", ".join(f"min({v}_min), max({v}_max), sum({v}_sum), sum({v}_n)" for v in asked)
        partial = ", sum(news2_partial_n)" if "news2" in asked else ""
        any_counted = " OR ".join(f"{v}_n > 0" for v in asked)  # minutes with none of the asked vitals: not read
        query = text(
            f"SELECT patient_id, {self._whole} / {SPARKLINE_STEP_S} * {SPARKLINE_STEP_S} AS b, {columns}{partial} "
            f"FROM vital_rollups WHERE patient_id IN :ids AND t >= :lo AND t < :hi AND ({any_counted}) "
            "GROUP BY patient_id, b ORDER BY patient_id, b").bindparams(bindparam("ids", expanding=True))
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"ids": list(patient_ids), "lo": low, "hi": high}).all()
        # 1,000 patients make 13,000 buckets per vital asked: built in one loop, straight from the row
        # (this loop and the fetch are most of the ward's time, so the overview asks only for the two
        # sparklines it draws).
        places = [(vital, 2 + 4 * i, vital == "news2") for i, vital in enumerate(asked)]
        lines: dict[str, dict[str, list[Bucket]]] = {p: {v: [] for v in asked} for p in patient_ids}
        for row in rows:
            line, t = lines[row[0]], float(row[1])
            for vital, at, news2 in places:
                count = row[at + 3]
                if count:
                    line[vital].append(Bucket(t, float(row[at]), float(row[at + 1]), float(row[at + 2]) / count, int(count),
                                              bool(row[-1]) if news2 else None))
        return [WardRow(patient_id, latest[patient_id], lines[patient_id]) for patient_id in patient_ids]

    def raw_series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        """The same buckets, scanned from every raw reading (or score): the baseline rollups replace."""
        check_vital(vital)
        low, high = window(start, end, step)
        table = "scores" if vital == "risk" else "readings"
        partial = "sum(CASE WHEN news2_partial THEN 1 ELSE 0 END)" if vital == "news2" else "0"
        query = text(
            f"SELECT {self._whole} / :step * :step AS b, min({vital}), max({vital}), sum({vital}), count({vital}), "
            f"{partial} FROM {table} WHERE patient_id = :p AND t >= :lo AND t < :hi AND {vital} IS NOT NULL "
            "GROUP BY b ORDER BY b")
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"p": patient_id, "lo": low, "hi": high, "step": int(step)}).all()
        return [_bucket(row, bool(row[5]) if vital == "news2" else None) for row in rows]
