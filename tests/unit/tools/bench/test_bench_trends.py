"""`vigil bench trends` on SQLite runs end to end and reports both sides (a smoke test, not a timing)."""

from __future__ import annotations

from vigil.cli import main
from vigil.tools.bench.trends import bench_trends


def test_the_trends_bench_reports_rollups_against_the_raw_scan():
    result = bench_trends(store="sqlite", patients=5, days=0.05, rate=0.5, ward_every_s=30, repeats=2)
    (sqlite,) = result["results"]
    assert sqlite["ward_readings"] == 5 * (120 + 2) and sqlite["chart_readings"] == int(0.05 * 86_400 * 0.5)
    for query in ("ward", "chart_7d_1h", "chart_7d_5min", "chart_24h_1min"):
        assert sqlite[query]["rollup"]["p95_ms"] > 0 and sqlite[query]["raw"]["p95_ms"] > 0
        assert sqlite[query]["raw_over_rollup_p95"] > 0


def test_the_bench_command_knows_trends(capsys):
    assert main(["bench", "trends", "--patients", "3", "--days", "0.01", "--repeats", "1"]) == 0
    assert '"bench": "trends"' in capsys.readouterr().out
