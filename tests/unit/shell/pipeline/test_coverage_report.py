"""Coverage you can see (shell.pipeline.coverage_report): counts by cause, the oldest, and the
uncovered patients that make /healthz degraded."""

from vigil.core.coverage import CoverageLimits
from vigil.core.patient import PatientMonitor
from vigil.core.reading import Reading
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.coverage_report import CoverageReport

T0 = 1_800_000_000.0


def test_a_patient_past_its_bound_without_an_alert_is_uncovered_until_the_alert_opens():
    metrics = Metrics()
    report = CoverageReport(metrics)
    seen = PatientMonitor("pt-seen")
    seen.observe(Reading("pt-seen", "wr-1", T0, 1, hr=70.0, spo2=97.0))
    seen.heard(T0, T0)
    never = PatientMonitor("pt-never", coverage=CoverageLimits(never_seen_after_s=60.0))
    never.coverage.watch(T0)
    body = report.update([seen, never], T0 + 30)
    assert body["monitored"] == 2 and body["at_risk"] == {} and report.failing is None
    body = report.update([seen, never], T0 + 61)  # due, and no tick has raised it yet
    assert body["not_monitored"] == {"never_seen": 1} and body["uncovered"] == ["pt-never"]
    assert body["oldest_unmonitored_s"] == 61.0 and "not monitored" in report.failing
    exposition = metrics.exposition().decode()
    assert 'vigil_patients_coverage{cause="never_seen"} 1.0' in exposition
    assert "vigil_patients_uncovered 1.0" in exposition
    never.tick(T0 + 61)  # the technical alert opens
    body = report.update([seen, never], T0 + 62)
    assert body["uncovered_count"] == 0 and report.failing is None and body["not_monitored"] == {"never_seen": 1}
