"""`vigil bench logins` runs and reports every figure (speed itself is never asserted)."""

from vigil.tools.bench.logins import bench_logins


def test_bench_logins_reports_each_kind_of_login():
    result = bench_logins(devices=3)
    assert result["devices"] == 3
    for key in ("enrol_ms", "first_login_ms", "reconnect_login_ms", "wrong_password_after_a_login_ms",
                "unknown_device_ms", "reconnect_storm_s", "cold_start_storm_s"):
        assert result[key] >= 0
