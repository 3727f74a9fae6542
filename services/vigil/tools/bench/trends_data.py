"""The datasets and timing of `vigil bench trends`, shared by its SQLite and InfluxDB parts."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator

from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.trends.model import TrendStore

CHART_QUERIES = (("7d_1h", 7 * 86_400, 3600), ("7d_5min", 7 * 86_400, 300), ("24h_1min", 86_400, 60))


def _ward_rows(patients: int, now: float, every_s: float, seed: int) -> Iterator[tuple[list[ReadingRow], list[ScoreRow]]]:
    rng = random.Random(seed)
    for p in range(patients):
        patient, readings, scores = f"pt-{p:05d}", [], []
        t = now - 3600 + rng.random() * every_s
        while t < now:
            readings.append(ReadingRow(patient, f"ring-{p:05d}", t, int(t), hr=60 + rng.random() * 50, spo2=90 + rng.random() * 9,
                                       rr=12 + rng.random() * 10, temp=36.5 + rng.random(), news2=rng.randint(0, 6),
                                       news2_partial=rng.random() < 0.1))
            t += every_s
        readings += [ReadingRow(patient, f"cuff-{p:05d}", now - 3600 + k * 1800 + 7, k, sbp=110.0 + k, dbp=70.0) for k in range(2)]
        scores += [ScoreRow(patient, now - 3600 + m * 60 + 3, 0.1, rng.random(), "bench") for m in range(60)]
        yield readings, scores


def _chart_rows(now: float, days: float, rate: float, seed: int, batch: int = 5000) -> Iterator[list[ReadingRow]]:
    rng = random.Random(seed)
    count, start, rows = int(days * 86_400 * rate), now - days * 86_400, []
    for i in range(count):
        t = start + i / rate
        rows.append(ReadingRow("pt-chart", "ring-chart", t, i, hr=70 + 20 * math.sin(i / 5000) + rng.random() * 5,
                               spo2=95 + rng.random() * 3, rr=16.0, temp=37.0, news2=rng.randint(0, 3), news2_partial=False))
        if len(rows) == batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _percentiles(work: Callable[[], object], repeats: int) -> dict[str, float]:
    work()  # warm: first query plans, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2), "p95_ms": round(times[max(0, math.ceil(0.95 * len(times)) - 1)], 2)}


def _compare(rollup: Callable[[], object], raw: Callable[[], object], repeats: int) -> dict[str, object]:
    fast, slow = _percentiles(rollup, repeats), _percentiles(raw, repeats)
    return {"rollup": fast, "raw": slow, "raw_over_rollup_p95": round(slow["p95_ms"] / max(fast["p95_ms"], 1e-6), 1)}


def _queries(trends: TrendStore, raw_ward: Callable[[list[str], float], object], ids: list[str], now: float,
             repeats: int) -> dict[str, object]:
    result: dict[str, object] = {"ward": _compare(lambda: trends.ward(ids, now), lambda: raw_ward(ids, now), repeats)}
    for name, span, step in CHART_QUERIES:
        result[f"chart_{name}"] = _compare(lambda: trends.series("pt-chart", "hr", now - span, now, step),
                                           lambda: trends.raw_series("pt-chart", "hr", now - span, now, step),  # type: ignore[attr-defined]
                                           repeats)
    return result
