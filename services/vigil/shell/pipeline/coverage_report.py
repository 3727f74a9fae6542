"""Coverage you can see: how many patients are monitored, and why the others are not.

Computed on the runtime's timer from every patient's verdict (core.coverage), into Prometheus
gauges and a /healthz section. A patient is *not monitored* once its cause is due (past its
bound; before that it is *at risk*), and *uncovered* while not monitored without an open
technical alert covering the cause: the one state that must never last, so /healthz says
`degraded` while any patient is uncovered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from vigil.core.coverage import CAUSES, MONITORED
from vigil.core.patient import PatientMonitor
from vigil.shell.observability.metrics import Metrics


class CoverageReport:
    """The latest coverage picture of one process's patients."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.report: dict[str, Any] = {"patients": 0, "monitored": 0, "not_monitored": {}, "at_risk": {},
                                       "uncovered": [], "oldest_unmonitored_s": 0.0}
        # Patient-seconds on the runtime's clock, between updates: monitored, all, and uncovered.
        self.last_t: float | None = None
        self.patient_s = self.monitored_s = self.uncovered_s = 0.0

    def update(self, monitors: Iterable[PatientMonitor], now: float) -> dict[str, Any]:
        not_monitored: Counter[str] = Counter()
        at_risk: Counter[str] = Counter()
        uncovered: list[str] = []
        oldest = 0.0
        total = monitored = 0
        for monitor in monitors:
            total += 1
            verdict = monitor.verdict(now)
            if verdict.cause == MONITORED:
                monitored += 1
                continue
            if verdict.due is not None and now < verdict.due:
                at_risk[verdict.cause] += 1
                monitored += 1  # still within its bound: counted as monitored, reported at risk
                continue
            not_monitored[verdict.cause] += 1
            oldest = max(oldest, now - (verdict.since if verdict.since is not None else now))
            if monitor.covering_alert(verdict) is None:
                uncovered.append(monitor.patient_id)
        if self.last_t is not None and now > self.last_t:
            step = now - self.last_t
            self.patient_s += step * total
            self.monitored_s += step * monitored
            self.uncovered_s += step * len(uncovered)
        self.last_t = now
        self.report = {"patients": total, "monitored": monitored, "not_monitored": dict(not_monitored),
                       "at_risk": dict(at_risk), "uncovered": sorted(uncovered)[:20],
                       "uncovered_count": len(uncovered), "oldest_unmonitored_s": round(oldest, 1)}
        if self.metrics is not None:
            gauge = self.metrics.coverage
            gauge.labels(MONITORED).set(monitored)
            for cause in CAUSES:
                gauge.labels(cause).set(not_monitored.get(cause, 0))
            self.metrics.coverage_oldest.set(oldest)
            self.metrics.coverage_uncovered.set(len(uncovered))
        return self.report

    def tally(self) -> dict[str, float]:
        """Patient-minutes monitored (within a cause's bound counts as monitored), of all, and
        uncovered, since the first update."""
        share = self.monitored_s / self.patient_s if self.patient_s else 1.0
        return {"patient_minutes": round(self.patient_s / 60, 1), "monitored_minutes": round(self.monitored_s / 60, 1),
                "monitored_share": round(share, 4), "uncovered_minutes": round(self.uncovered_s / 60, 1)}

    @property
    def failing(self) -> str | None:
        """Why the service is degraded (patients not monitored and nobody told), or None."""
        count = self.report.get("uncovered_count", 0)
        return f"{count} patient(s) not monitored without an open technical alert" if count else None
