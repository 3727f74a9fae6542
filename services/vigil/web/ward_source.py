"""What the ward workspace reads, whichever runtime serves it.

The embedded runtime hands over its SQLite engine, `SqlTrends` over the same file, and the live
coverage verdict of every patient it monitors; `vigil notifier` (scaled) hands over PostgreSQL,
`scaled_trends` (the ward from PostgreSQL, charts from InfluxDB) when InfluxDB is configured, and no live coverage: there a patient's monitoring
status comes from the open technical alerts the processors wrote (device_offline, not_monitored,
poor_signal), which is how the scaled path reports a patient it cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from vigil.shell.registry import Registry
from vigil.shell.trends.model import TrendStore

# patient ids, now -> per patient {"state": monitored|at_risk|not_monitored|unknown, "cause", "words", "since"}
CoverageOf = Callable[[list[str], float], dict[str, dict[str, Any]]]


@dataclass
class WardSource:
    engine: Engine
    registry: Registry
    clock: Callable[[], float]
    trends: TrendStore | None = None
    coverage_of: CoverageOf | None = None
    grafana_url: str | None = None  # VIGIL_GRAFANA_URL: links to the patient's Grafana dashboard

    def grafana_link(self, patient_id: str) -> str | None:
        """The patient's dashboard (uid vigil-patient, tools/dashboards), or None without Grafana."""
        if not self.grafana_url:
            return None
        return f"{self.grafana_url.rstrip('/')}/d/vigil-patient?var-patient={patient_id}"


def verdicts_as_coverage(verdicts: dict[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """core.coverage Verdicts as the workspace shows them: monitored; at risk (a cause, still
    within its bound); not monitored (past it)."""
    shown: dict[str, dict[str, Any]] = {}
    for patient_id, verdict in verdicts.items():
        if verdict.monitored:
            shown[patient_id] = {"state": "monitored"}
            continue
        state = "at_risk" if verdict.due is not None and now < verdict.due else "not_monitored"
        shown[patient_id] = {"state": state, "cause": verdict.cause, "words": verdict.words, "since": verdict.since}
    return shown
