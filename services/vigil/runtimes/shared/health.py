"""The one health rule of every runtime: ok, degraded or down, and the HTTP status it answers.

`ok`: the service is doing its work and nothing failed; `degraded`: it is working but its last
attempt failed (a store, Kafka); `down`: it is not working at all (no broker connection, a dead
task). Only `down` answers 503, so that a load balancer or orchestrator takes the process out
of service while a degraded one keeps serving and retrying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK, DEGRADED, DOWN = "ok", "degraded", "down"


def health_status(*, running: bool, failing: bool) -> str:
    """ok / degraded / down, from whether the service runs and whether its last attempt failed."""
    if not running:
        return DOWN
    return DEGRADED if failing else OK


def http_status(health: Mapping[str, Any]) -> int:
    """The HTTP status of a /healthz answer: 503 when down, 200 otherwise."""
    return 503 if health["status"] == DOWN else 200


def processor_health(*, influx_ok: bool, influx_failures: int, failed_batches: int, last_error: str | None,
                     batches: Mapping[str, Any], readings: int, rejected: int, alerts: int,
                     with_models: bool, models: Mapping[str, object]) -> dict[str, Any]:
    """The Faust processor's /healthz payload. A worker that answers is running, so it is never
    `down`; it is `degraded` while InfluxDB is unhealthy or its last batch failed."""
    return {"status": health_status(running=True, failing=not influx_ok or bool(last_error)),
            "influx_ok": influx_ok, "influx_failures": influx_failures,
            "failed_batches": failed_batches, "last_error": last_error,
            "batches": dict(batches),
            "readings": readings, "rejected": rejected, "alerts": alerts,
            "scoring": "rules+models" if with_models else "rules",
            "models": models}
