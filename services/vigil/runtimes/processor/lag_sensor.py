"""Where a record waits inside a worker before it is scored: a Faust sensor.

Measures, per record, the time from its Kafka timestamp (set by the gateway's producer) to the
moment the consumer hands it to Faust, and the time each offset commit takes (Faust flushes the
producer, then commits, and its fetch loop waits for that). Reported on /healthz."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from faust.sensors import Sensor

from vigil.runtimes.processor.timings import p99


class LagSensor(Sensor):
    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.kafka_to_fetched: deque[float] = deque(maxlen=50_000)
        self.commits: deque[float] = deque(maxlen=5_000)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        if tp.topic == self.topic and message.timestamp:
            self.kafka_to_fetched.append(time.time() - message.timestamp)

    def on_commit_initiated(self, consumer: Any) -> Any:
        return time.perf_counter()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.commits.append(time.perf_counter() - state)

    def report(self) -> dict[str, Any]:
        return {"kafka_to_fetched_p99_s": p99(self.kafka_to_fetched), "commit_p99_s": p99(self.commits),
                "commit_max_s": round(max(self.commits), 3) if self.commits else None, "commits": len(self.commits)}
