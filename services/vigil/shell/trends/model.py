"""What a trend query answers, whichever store holds the rollups, and the one interface to ask it.

The ward workspace draws min–max bands, never a mean alone (a mean hides the dip a clinician looks
for), so every bucket carries min, max, mean and count; NEWS2 buckets also say whether any score
in them was partial. Buckets are aligned to the epoch, `step` seconds wide, a multiple of the
one-minute rollup; a bucket holds every reading of its span, so the first and last bucket of a
window may reach outside [start, end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

TREND_VITALS = ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2", "risk")
ROLLUP_STEP_S = 60


@dataclass(frozen=True, slots=True)
class Bucket:
    """One span of a series: its start (epoch s), min, max, mean and how many values."""

    t: float
    min: float
    max: float
    mean: float
    count: int
    partial: bool | None = None  # NEWS2 only: was any score in the bucket partial


@dataclass(frozen=True, slots=True)
class Latest:
    """A patient's newest value of one vital and when it was measured."""

    value: float
    t: float
    partial: bool | None = None  # NEWS2 only

    def age_s(self, now: float) -> float:
        return now - self.t


@dataclass(frozen=True, slots=True)
class PatientLatest:
    """Per vital (TREND_VITALS, NEWS2 and risk included) the newest value; a vital never seen is absent."""

    patient_id: str
    vitals: dict[str, Latest] = field(default_factory=dict)

    @property
    def news2(self) -> Latest | None:
        return self.vitals.get("news2")

    @property
    def risk(self) -> Latest | None:
        return self.vitals.get("risk")

    @property
    def last_t(self) -> float | None:
        """When anything was last measured for this patient (None: never)."""
        return max((latest.t for latest in self.vitals.values()), default=None)


@dataclass(frozen=True, slots=True)
class WardRow:
    """One patient's overview row: latest values, and sparklines of the last hour (5-min buckets)."""

    patient_id: str
    latest: PatientLatest
    sparklines: dict[str, list[Bucket]]


SPARKLINE_VITALS = ("hr", "spo2", "rr", "news2")
SPARKLINE_SPAN_S = 3600
SPARKLINE_STEP_S = 300


def window(start: float, end: float, step: int) -> tuple[float, float]:
    """The buckets' span: [start, end) widened to whole steps. Refuses a step the rollups cannot give."""
    if step < ROLLUP_STEP_S or step % ROLLUP_STEP_S:
        raise ValueError(f"step must be a multiple of {ROLLUP_STEP_S} s, not {step}")
    if end <= start:
        raise ValueError("end must be after start")
    return math.floor(start / step) * step, math.ceil(end / step) * step


def sparkline_vitals(vitals: Sequence[str]) -> tuple[str, ...]:
    """The sparklines a `ward` call asks for, checked: a caller that draws two asks for two (the
    ward's time grows with every vital's buckets), never one the ward does not keep."""
    asked = tuple(dict.fromkeys(vitals))
    unknown = [v for v in asked if v not in SPARKLINE_VITALS]
    if unknown or not asked:
        raise ValueError(f"sparklines are of {', '.join(SPARKLINE_VITALS)}, not {unknown or 'none'}")
    return asked


def check_vital(vital: str) -> None:
    if vital not in TREND_VITALS:
        raise ValueError(f"unknown vital {vital!r}: one of {', '.join(TREND_VITALS)}")


class TrendStore(Protocol):
    """Trends from the per-minute rollups: SQLite/PostgreSQL (`SqlTrends`) or InfluxDB (`InfluxTrends`)."""

    def series(self, patient_id: str, vital: str, start: float, end: float, step: int) -> list[Bucket]:
        """Buckets of `step` seconds covering [start, end), oldest first; empty ones left out."""
        ...

    def latest(self, patient_ids: list[str]) -> dict[str, PatientLatest]:
        """Every patient asked for, with the newest value of each vital it has (none: an empty row)."""
        ...

    def ward(self, patient_ids: list[str], now: float, vitals: Sequence[str] = SPARKLINE_VITALS) -> list[WardRow]:
        """One row per patient, in the order asked: latest values and the last hour's sparklines of
        `vitals` (some of SPARKLINE_VITALS; all by default), each vital asked for a list, maybe empty."""
        ...
