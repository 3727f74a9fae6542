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
