"""The one contract every `TrendStore` keeps, run against SQLite (tests/unit/shell/trends), PostgreSQL
(tests/integration/test_trends_postgres.py) and the real InfluxDB (tests/integration/test_trends_influx.py)
on the same data.

A `Ward` stores readings and scores the way its runtime does and makes the rollups current
(SQLite: in the write itself; InfluxDB: the raw points, then the rollup Flux over their range).
"""

from __future__ import annotations

import math
import random
import time
from typing import Protocol

import pytest

from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.trends.model import SPARKLINE_VITALS, TREND_VITALS, Bucket
from vigil.shell.trends.sql_trends import SqlTrends


class Ward(Protocol):
    trends: object

    def store(self, readings: list[ReadingRow], scores: list[ScoreRow]) -> None: ...


class SqlWard:
    """A `Ward` on the SQL store (SQLite or PostgreSQL): rollups written with the readings."""

    def __init__(self, url: str) -> None:
        self.sql = SqlStore(url)
        self.trends = SqlTrends(self.sql.engine)

    def store(self, readings: list[ReadingRow], scores: list[ScoreRow]) -> None:
        self.sql.write(WriteBatch(readings=readings, scores=scores))


HOUR = 3600.0
NOW = math.floor(time.time() / 3600) * 3600 - 60  # recent (InfluxDB's latest looks back 30 days), a minute boundary
T0 = NOW - 2 * HOUR


def calm_and_sick(seed: int = 3) -> tuple[list[ReadingRow], list[ScoreRow]]:
    """Two hours: pt-calm well on one device; pt-sick on two devices (a ring and a patch) whose SpO2
    dips, with a cuff BP every 30 min and partial NEWS2 when RR is missing. pt-gone sent one reading
    a day ago, and nothing since."""
    rng = random.Random(seed)
    readings, scores = [], []
    for s in range(0, int(2 * HOUR), 5):
        t = T0 + s + 0.25
        readings.append(ReadingRow("pt-calm", "ring-c", t, s, hr=70 + rng.random() * 4, spo2=97.0, rr=14.0, temp=36.8,
                                   news2=0, news2_partial=False))
        dip = 84.0 if 3000 <= s < 3300 else 95.0
        rr = None if s % 60 == 0 else 22.0
        readings.append(ReadingRow("pt-sick", "ring-s", t, s, hr=100 + rng.random() * 20, spo2=dip + rng.random(), rr=rr,
                                   news2=6 if rr else 4, news2_partial=rr is None, flags="motion" if s % 50 == 0 else ""))
        if s % 10 == 0:
            readings.append(ReadingRow("pt-sick", "patch-s", t + 1, s, hr=110.0, spo2=None, rr=24.0, temp=38.4, news2=7,
                                       news2_partial=False))
        if s % 1800 == 0:
            readings.append(ReadingRow("pt-sick", "cuff-s", t + 2, s, sbp=98.0 - s / 1800, dbp=60.0))
        if s % 60 == 0:
            scores.append(ScoreRow("pt-sick", t, 0.2, 0.1 + s / 10_000, "m1"))
    readings.append(ReadingRow("pt-gone", "ring-g", NOW - 86_400 + 7, 1, hr=66.0, spo2=98.0))
    return readings, scores


def stored(ward: Ward) -> tuple[list[ReadingRow], list[ScoreRow]]:
    """Store the data as devices deliver it: in shuffled batches, some of them twice (replays)."""
    readings, scores = calm_and_sick()
    rng = random.Random(5)
    order = readings[:]
    rng.shuffle(order)
    for i in range(0, len(order), 500):
        ward.store(order[i:i + 500], [])
        if i % 1500 == 0:
            ward.store(order[i:i + 500], [])  # a replayed batch
    ward.store([], scores)
    ward.store([], scores[:10])
    return readings, scores


def expected(readings: list[ReadingRow], scores: list[ScoreRow], patient: str, vital: str, step: int,
             start: float, end: float) -> list[Bucket]:
    """The buckets, computed here from the rows themselves."""
    low, high = math.floor(start / step) * step, math.ceil(end / step) * step
    values: dict[float, list[tuple[float, bool]]] = {}
    if vital == "risk":
        rows = [(s.t, s.risk, False) for s in scores if s.patient_id == patient]
    else:
        rows = [(r.t, getattr(r, vital), bool(r.news2_partial)) for r in readings if r.patient_id == patient]
    for t, value, partial in rows:
        if value is not None and low <= t < high:
            values.setdefault(math.floor(t / step) * step, []).append((float(value), partial))
    return [Bucket(t, min(v for v, _ in vs), max(v for v, _ in vs), sum(v for v, _ in vs) / len(vs), len(vs),
                   any(p for _, p in vs) if vital == "news2" else None) for t, vs in sorted(values.items())]


def assert_same(got: list[Bucket], want: list[Bucket]) -> None:
    assert [b.t for b in got] == [b.t for b in want]
    for g, w in zip(got, want):
        assert (g.min, g.max, g.count, g.partial) == pytest.approx((w.min, w.max, w.count, w.partial)), g.t
        assert g.mean == pytest.approx(w.mean), g.t


def check_series_equal_the_rows(ward: Ward, data) -> None:
    readings, scores = data
    for vital in TREND_VITALS:
        for step in (60, 300, 3600):
            for patient in ("pt-calm", "pt-sick"):
                start, end = T0 + 17, NOW - 1
                assert_same(ward.trends.series(patient, vital, start, end, step),
                            expected(readings, scores, patient, vital, step, start, end))


def check_series_equal_the_raw_scan(ward: Ward) -> None:
    for vital in ("spo2", "news2", "sbp", "risk"):
        got = ward.trends.series("pt-sick", vital, T0, NOW, 300)
        assert got, vital
        assert_same(got, ward.trends.raw_series("pt-sick", vital, T0, NOW, 300))


def check_a_dip_shows_as_a_minimum(ward: Ward) -> None:
    """The hourly bucket holding the SpO2 dip shows it as its minimum; its mean does not."""
    hours = ward.trends.series("pt-sick", "spo2", T0, NOW, 3600)
    dip = [b for b in hours if b.t <= T0 + 3000 < b.t + 3600]
    assert len(hours) == 3 and len(dip) == 1 and dip[0].min < 85.0 < 90.0 < dip[0].mean


def check_news2_buckets_say_partial(ward: Ward) -> None:
    minutes = ward.trends.series("pt-sick", "news2", T0, T0 + 300, 60)
    assert [b.partial for b in minutes] == [True] * 5
    assert [b.max for b in minutes] == [7.0] * 5
    assert all(b.partial is False for b in ward.trends.series("pt-calm", "news2", T0, T0 + 300, 60))
    assert all(b.partial is None for b in ward.trends.series("pt-sick", "hr", T0, T0 + 300, 60))


def check_latest(ward: Ward, data) -> None:
    readings, scores = data
    latest = ward.trends.latest(["pt-sick", "pt-calm", "pt-gone", "pt-never"])
    assert set(latest) == {"pt-sick", "pt-calm", "pt-gone", "pt-never"}
    sick = latest["pt-sick"].vitals
    for vital in ("hr", "spo2", "rr", "temp", "sbp", "dbp"):
        newest = max((r for r in readings if r.patient_id == "pt-sick" and getattr(r, vital) is not None), key=lambda r: r.t)
        assert (sick[vital].t, sick[vital].value) == pytest.approx((newest.t, getattr(newest, vital))), vital
    assert sick["sbp"].t < NOW - 1700  # a cuff reading is found however old within the window
    newest_news2 = max((r for r in readings if r.patient_id == "pt-sick"), key=lambda r: r.t)
    assert latest["pt-sick"].news2.value == newest_news2.news2
    assert latest["pt-sick"].news2.partial is newest_news2.news2_partial
    assert latest["pt-sick"].risk.value == pytest.approx(scores[-1].risk)
    assert latest["pt-sick"].risk.t == pytest.approx(scores[-1].t)
    assert latest["pt-calm"].risk is None
    assert latest["pt-gone"].vitals["hr"].age_s(NOW) == pytest.approx(86_400 - 7)
    assert latest["pt-never"].vitals == {} and latest["pt-never"].last_t is None


def check_ward(ward: Ward) -> None:
    asked = ["pt-gone", "pt-sick", "pt-never", "pt-calm"]
    rows = ward.trends.ward(asked, NOW)
    assert [row.patient_id for row in rows] == asked
    by_id = {row.patient_id: row for row in rows}
    assert by_id["pt-gone"].latest.vitals["hr"].value == 66.0  # silent a day: still on the ward
    assert all(by_id["pt-gone"].sparklines[v] == [] for v in SPARKLINE_VITALS)
    spo2 = by_id["pt-sick"].sparklines["spo2"]
    assert len(spo2) == 13  # [NOW - 1 h, NOW) widened to whole 5-minute buckets
    assert_same(spo2, ward.trends.series("pt-sick", "spo2", NOW - 3600, NOW, 300))
    assert by_id["pt-sick"].sparklines["news2"][-1].partial is True
    assert by_id["pt-calm"].latest.news2.partial is False
    check_ward_narrowed(ward, asked, rows)


def check_ward_narrowed(ward: Ward, asked: list[str], full: list) -> None:
    """The overview asks only for the sparklines it draws: those, the same buckets as the full
    ward's, the same latest values and order; a vital the ward does not keep is refused."""
    narrow = ward.trends.ward(asked, NOW, ("hr", "spo2"))
    assert [row.patient_id for row in narrow] == asked
    for small, big in zip(narrow, full):
        assert set(small.sparklines) == {"hr", "spo2"}
        assert small.latest == big.latest
        for vital in ("hr", "spo2"):
            assert_same(small.sparklines[vital], big.sparklines[vital])
    assert narrow[1].sparklines["hr"]  # pt-sick has its last hour
    with pytest.raises(ValueError):
        ward.trends.ward(asked, NOW, ("temp",))
    with pytest.raises(ValueError):
        ward.trends.ward(asked, NOW, ())


def check_refusals(ward: Ward) -> None:
    for step in (0, 30, 90):
        with pytest.raises(ValueError):
            ward.trends.series("pt-sick", "hr", T0, NOW, step)
    with pytest.raises(ValueError):
        ward.trends.series("pt-sick", "glucose", T0, NOW, 60)
    with pytest.raises(ValueError):
        ward.trends.series("pt-sick", "hr", NOW, T0, 60)
