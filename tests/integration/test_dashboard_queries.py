"""Every Flux query of the Grafana dashboards, run against the real InfluxDB on series written
exactly as the processor writes them, with Grafana's macros substituted as Grafana does."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from vigil.tools.dashboards.definitions import WARD_TABLE_COLUMNS, all_dashboards, panel_queries
from vigil.tools.dashboards.flux import band_query, partial_news2_query, silent_devices_query, ward_query
from vigil.shell.stores.influx import InfluxSeriesWriter, line_for, score_line
from vigil.shell.stores.rows import ReadingRow, ScoreRow

pytestmark = pytest.mark.integration


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def grafana_interpolate(query: str, *, bucket: str, patient: str, start: float, stop: float, window: str = "1m") -> str:
    return (query.replace("v.timeRangeStart", _rfc3339(start)).replace("v.timeRangeStop", _rfc3339(stop))
            .replace("v.windowPeriod", window).replace("${bucket}", bucket).replace("${patient}", patient))


@pytest.fixture
def ward_series(servers, influx_bucket):
    """Two hours of two patients: pt-calm stays well; pt-sick's SpO2 falls and NEWS2 climbs to 7,
    its last five NEWS2 scored partial (a parameter missing). pt-quiet's device stopped sending
    an hour ago; pt-silent's seven hours ago, after an hour of readings."""
    now = time.time()
    lines = []
    for minute in range(120, 0, -1):
        t = now - minute * 60
        worse = max(0, 60 - minute) / 60  # the last hour, 0 → 1
        for patient, spo2, hr, news2 in (("pt-calm", 97.0, 70.0, 0), ("pt-sick", 96 - 8 * worse, 80 + 35 * worse, round(7 * worse))):
            lines.append(line_for(ReadingRow(patient_id=patient, device_id=f"wr-{patient}", t=t, seq=120 - minute,
                                             hr=hr, spo2=spo2, rr=16.0 + 8 * worse * (patient == "pt-sick"), temp=37.0,
                                             sbp=120.0, dbp=80.0, battery=80.0 - minute / 10, news2=news2,
                                             news2_partial=patient == "pt-sick" and minute <= 5, flags="")))
            lines.append(score_line(ScoreRow(patient_id=patient, t=t, anomaly=worse * (patient == "pt-sick"),
                                             risk=0.05 + 0.8 * worse * (patient == "pt-sick"), model_version="test")))
        if minute > 60:
            lines.append(line_for(ReadingRow(patient_id="pt-quiet", device_id="wr-q", t=t, seq=120 - minute,
                                             hr=72.0, spo2=97.0, news2=0, flags="")))
    for minute in range(8 * 60, 7 * 60, -1):
        lines.append(line_for(ReadingRow(patient_id="pt-silent", device_id="wr-s", t=now - minute * 60,
                                         seq=8 * 60 - minute, hr=64.0, spo2=93.0, news2=1, news2_partial=False,
                                         flags="")))
    writer = InfluxSeriesWriter(servers["VIGIL_INFLUX_URL"], servers["VIGIL_INFLUX_TOKEN"], servers["VIGIL_INFLUX_ORG"],
                                influx_bucket)
    writer.write_now(lines)
    yield now
    writer.close()


def query(servers, flux: str):
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        return client.query_api().query(flux)


def test_every_dashboard_query_runs_and_returns_the_series(servers, influx_bucket, ward_series):
    now = ward_series
    for dashboard in all_dashboards():
        for title, flux in panel_queries(dashboard):
            tables = query(servers, grafana_interpolate(flux, bucket=influx_bucket, patient="pt-sick",
                                                        start=now - 3 * 3600, stop=now + 60))
            records = [r for table in tables for r in table.records]
            assert records, f"{dashboard['title']} / {title}: no rows"


def _rows(tables) -> list[dict]:
    return [r.values for table in tables for r in table.records]


def test_ward_table_lists_the_sickest_patient_first_with_latest_values(servers, influx_bucket, ward_series):
    rows = _rows(query(servers, grafana_interpolate(ward_query(), bucket=influx_bucket, patient="", start=0, stop=0)))
    by_patient = {r["patient_id"]: r for r in rows}
    assert rows[0]["patient_id"] == "pt-sick"
    assert set(WARD_TABLE_COLUMNS) <= set(rows[0])  # every column the table's overrides and order name
    assert by_patient["pt-sick"]["news2"] == 7.0 and by_patient["pt-calm"]["news2"] == 0.0
    assert by_patient["pt-sick"]["spo2"] == pytest.approx(96 - 8 * 59 / 60, abs=0.01)
    assert by_patient["pt-sick"]["risk"] > 0.7 and by_patient["pt-calm"]["risk"] == pytest.approx(0.05)
    # the latest NEWS2 was partial for pt-sick, complete for the others; each value has its age
    assert by_patient["pt-sick"]["news2_partial"] == 1.0 and by_patient["pt-calm"]["news2_partial"] == 0.0
    for field in ("news2", "news2_partial", "spo2", "hr", "risk"):
        assert 50 <= by_patient["pt-sick"][f"{field}_age_s"] <= 600, field  # written a minute before `now`


def test_a_device_silent_for_seven_hours_stays_on_the_ward_table_with_its_age(servers, influx_bucket, ward_series):
    rows = _rows(query(servers, grafana_interpolate(ward_query(), bucket=influx_bucket, patient="", start=0, stop=0)))
    silent = {r["patient_id"]: r for r in rows}["pt-silent"]
    assert silent["spo2"] == 93.0 and silent["news2"] == 1.0 and silent["news2_partial"] == 0.0
    assert 7 * 3600 <= silent["spo2_age_s"] <= 7 * 3600 + 600 and 7 * 3600 <= silent["news2_age_s"] <= 7 * 3600 + 600
    assert silent.get("risk") is None and silent.get("risk_age_s") is None  # never scored: empty, not made up


def test_a_one_minute_dip_inside_a_ten_minute_window_stays_visible(servers, influx_bucket):
    """SpO2 97 % every 10 s for 30 min, except one minute at 84 % in the middle window: the
    window's min is 84 (the mean, ~95.7, would have hidden it)."""
    start = (int(time.time()) // 600 - 4) * 600  # three whole 10-minute windows, all in the past
    dip = range(start + 600 + 240, start + 600 + 300)
    lines = [line_for(ReadingRow(patient_id="pt-dip", device_id="wr-dip", t=float(t), seq=i, hr=80.0,
                                 spo2=84.0 if t in dip else 97.0, news2=0, flags=""))
             for i, t in enumerate(range(start, start + 1800, 10))]
    writer = InfluxSeriesWriter(servers["VIGIL_INFLUX_URL"], servers["VIGIL_INFLUX_TOKEN"], servers["VIGIL_INFLUX_ORG"],
                                influx_bucket)
    writer.write_now(lines)
    writer.close()
    flux = grafana_interpolate(band_query("spo2", "SpO2"), bucket=influx_bucket, patient="pt-dip", start=start,
                               stop=start + 1800, window="10m")
    windows: dict[str, dict[float, float]] = {}
    for row in _rows(query(servers, flux)):
        for name in ("SpO2 min", "SpO2 max", "SpO2 mean"):
            if row.get(name) is not None:
                windows.setdefault(name, {})[row["_time"].timestamp()] = row[name]
    dip_window = float(start + 1200)  # aggregateWindow stamps a window with its end
    assert windows["SpO2 min"] == {start + 600.0: 97.0, dip_window: 84.0, start + 1800.0: 97.0}
    assert windows["SpO2 max"][dip_window] == 97.0
    assert windows["SpO2 mean"][dip_window] == pytest.approx((54 * 97 + 6 * 84) / 60)


def test_partial_news2_is_its_own_series(servers, influx_bucket, ward_series):
    now = ward_series
    for patient, expected in (("pt-sick", 5), ("pt-calm", 0)):
        flux = grafana_interpolate(partial_news2_query(), bucket=influx_bucket, patient=patient,
                                   start=now - 3 * 3600, stop=now + 60)
        points = _rows(query(servers, flux))
        assert len(points) == expected and all(p["NEWS2 partial"] >= 6 for p in points)


def test_silent_devices_show_zero_readings(servers, influx_bucket, ward_series):
    rows = _rows(query(servers, grafana_interpolate(silent_devices_query(), bucket=influx_bucket, patient="",
                                                    start=0, stop=0)))
    counts = {r["patient_id"]: r["readings_15m"] for r in rows}
    assert {"patient_id", "readings_15m", "last_seen", "silent_for_s"} <= set(rows[0])
    assert [r["patient_id"] for r in rows[:2]] == ["pt-silent", "pt-quiet"]  # silent longest first, at 0
    assert counts["pt-silent"] == 0 and counts["pt-quiet"] == 0
    assert 14 <= counts["pt-sick"] <= 15 and 14 <= counts["pt-calm"] <= 15  # one a minute
    assert ward_series - rows[1]["last_seen"].timestamp() > 3500
    assert 7 * 3600 <= rows[0]["silent_for_s"] <= 7 * 3600 + 600
