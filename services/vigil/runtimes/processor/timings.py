"""Where a worker's time goes, batch by batch: reported on /healthz and by the latency bench."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from vigil.shell.observability.percentile import percentile


def rounded_percentile(values: Iterable[float], q: float) -> float | None:
    """The shared nearest-rank percentile, to the millisecond (None for no values)."""
    value = percentile(values, q)
    return None if value is None else round(value, 3)


def p99(values: deque[float]) -> float | None:
    return rounded_percentile(values, 0.99)


class BatchTimings:
    """Where a worker's time goes, per batch: for /healthz and the latency bench."""

    def __init__(self) -> None:
        self.count = 0
        self.records = 0
        self.sums: Counter[str] = Counter()
        self.slowest: list[tuple[float, int, dict[str, float]]] = []
        self.received_to_alert_sent: deque[float] = deque(maxlen=20_000)  # the most recent batches
        # Where a record waits before it is scored, per batch (oldest record): in Kafka and the
        # consumer's buffers (its Kafka timestamp -> taken), and for a free store slot.
        self.kafka_to_taken: deque[float] = deque(maxlen=20_000)
        self.slot_wait: deque[float] = deque(maxlen=20_000)
        self.loop_lag: deque[float] = deque(maxlen=20_000)  # event loop late to wake, per 50 ms tick

    def batch(self, records: int, stages: dict[str, float]) -> None:
        self.count += 1
        self.records += records
        self.sums.update(stages)
        self.slowest.append((stages["total"], records, stages))
        if len(self.slowest) > 20:
            self.slowest.sort(key=lambda item: item[0], reverse=True)
            del self.slowest[10:]

    async def watch_loop_lag(self, every_s: float = 0.05) -> None:
        """How late the event loop wakes (forever): anything blocking it delays every batch."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(every_s)
            self.loop_lag.append(time.perf_counter() - before - every_s)

    def alert_sent(self, seconds: float) -> None:
        self.received_to_alert_sent.append(seconds)

    def taken(self, kafka_wait: float, slot_wait: float) -> None:
        self.kafka_to_taken.append(kafka_wait)
        self.slot_wait.append(slot_wait)

    def report(self) -> dict[str, Any]:
        slowest = sorted(self.slowest, key=lambda item: item[0], reverse=True)[:5]
        return {**{f"{name}_p99_s": p99(values) for name, values in (
                    ("kafka_to_taken", self.kafka_to_taken), ("slot_wait", self.slot_wait), ("loop_lag", self.loop_lag))},
                "count": self.count, "records": self.records,
                "mean_ms": {k: round(v / max(self.count, 1) * 1000, 2) for k, v in self.sums.items()},
                "slowest": [{"records": n, **{k: round(v * 1000, 1) for k, v in stages.items()}} for _, n, stages in slowest],
                # gateway receipt of the oldest record in a batch -> its alerts handed to the producer
                "received_to_alert_sent_p50_s": rounded_percentile(self.received_to_alert_sent, 0.5),
                "received_to_alert_sent_p99_s": p99(self.received_to_alert_sent)}
