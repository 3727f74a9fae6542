"""What the worker reports on /healthz: failures, batch timings and lag, totals, scoring."""

from __future__ import annotations

import logging
from typing import Any

from vigil.runtimes.processor.lag_sensor import LagSensor
from vigil.runtimes.shared.health import health_status
from vigil.runtimes.processor.timings import BatchTimings
from vigil.shell.pipeline.coverage_report import CoverageReport
from vigil.shell.pipeline.pipeline import Pipeline
from vigil.shell.stores.influx import InfluxSeriesWriter

log = logging.getLogger("vigil.processor")


class Failures:
    """Failed attempts (retried in place, nothing acknowledged) and the last error, until a
    batch is stored again."""

    def __init__(self) -> None:
        self.batches = 0
        self.last_error: str | None = None

    def failed(self, what: str, exc: Exception, records: int, delay: float | None) -> None:
        self.batches += 1
        self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error(f"{what} failed; retrying, nothing acknowledged",
                  extra={"records": records, "retry_in_s": delay, "error": self.last_error})

    def stored(self) -> None:
        """A batch was stored and acknowledged: the worker is healthy again."""
        self.last_error = None


def health_report(influx: InfluxSeriesWriter, failures: Failures, timings: BatchTimings, lag: LagSensor,
                  pipeline: Pipeline, models_status: dict[str, object],
                  coverage: CoverageReport | None = None) -> dict[str, Any]:
    """The /healthz body, by the one health rule: a worker that answers is running (never down),
    degraded while InfluxDB is failing, a batch is being retried, or a patient of this worker is
    not monitored without an open technical alert (coverage, as of the last silence check)."""
    uncovered = coverage.failing if coverage is not None else None
    status = health_status(running=True, failing=not influx.healthy or bool(failures.last_error) or bool(uncovered))
    extra: dict[str, Any] = {} if coverage is None else {"coverage": coverage.report, "degraded_because": [
        r for r in (failures.last_error, None if influx.healthy else "influx failing", uncovered) if r]}
    return {"status": status, **extra, "influx_ok": influx.healthy, "influx_failures": influx.failures,
            "failed_batches": failures.batches, "last_error": failures.last_error,
            "batches": {**timings.report(), **lag.report()},
            "readings": pipeline.totals.readings, "rejected": sum(pipeline.totals.rejected.values()),
            "alerts": len(pipeline.totals.raised),
            "scoring": "rules+models" if pipeline.model_stage is not None else "rules",
            "models": models_status}
