"""`vigil bench scaled --part latency` runs end to end (a smoke test of the bench, not a timing)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_scaled_latency_bench_measures_the_whole_path(servers, store_rights):  # the services on their own roles
    from vigil.tools.bench.scaled import bench_latency

    result = bench_latency(seconds=10, rate_msgs_per_s=60, devices=20, batch_size=10, warmup_s=0)
    assert result["influx_probes"] > 0 and result["publish_to_influx_p50_s"] is not None
    assert set(result["cpu_ms_per_1000_readings"]) == {"gateway", "w1", "w2"}
    assert result["bench_cpu_ms_per_1000_readings"] > 0
    assert set(result["rss_mb_peak"]) == {"gateway", "w1", "w2"}
    for worker in ("w1", "w2"):
        assert result["worker_batches"][worker]["records"] > 0, f"{worker} took part"
