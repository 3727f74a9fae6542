"""Every Flux query of the Grafana dashboards, run against the real InfluxDB on series written
exactly as the processor writes them, with Grafana's macros substituted as Grafana does."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from vigil.tools.dashboards.definitions import all_dashboards, panel_queries, silent_devices_query, ward_query
from vigil.shell.stores.influx import InfluxSeriesWriter, line_for, score_line
from vigil.shell.stores.rows import ReadingRow, ScoreRow

pytestmark = pytest.mark.integration


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def grafana_interpolate(query: str, *, bucket: str, patient: str, start: float, stop: float) -> str:
    return (query.replace("v.timeRangeStart", _rfc3339(start)).replace("v.timeRangeStop", _rfc3339(stop))
            .replace("v.windowPeriod", "1m").replace("${bucket}", bucket).replace("${patient}", patient))


@pytest.fixture
def ward_series(servers, influx_bucket):
    """Two hours of two patients: pt-calm stays well; pt-sick's SpO2 falls and NEWS2 climbs to 7.
    pt-quiet's device stopped sending an hour ago."""
    now = time.time()
    lines = []
    for minute in range(120, 0, -1):
        t = now - minute * 60
        worse = max(0, 60 - minute) / 60  # the last hour, 0 → 1
        for patient, spo2, hr, news2 in (("pt-calm", 97.0, 70.0, 0), ("pt-sick", 96 - 8 * worse, 80 + 35 * worse, round(7 * worse))):
            lines.append(line_for(ReadingRow(patient_id=patient, device_id=f"wr-{patient}", t=t, seq=120 - minute,
                                             hr=hr, spo2=spo2, rr=16.0 + 8 * worse * (patient == "pt-sick"), temp=37.0,
                                             sbp=120.0, dbp=80.0, battery=80.0 - minute / 10, news2=news2,
                                             news2_partial=False, flags="")))
            lines.append(score_line(ScoreRow(patient_id=patient, t=t, anomaly=worse * (patient == "pt-sick"),
                                             risk=0.05 + 0.8 * worse * (patient == "pt-sick"), model_version="test")))
        if minute > 60:
            lines.append(line_for(ReadingRow(patient_id="pt-quiet", device_id="wr-q", t=t, seq=120 - minute,
                                             hr=72.0, spo2=97.0, news2=0, flags="")))
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


def test_ward_table_lists_the_sickest_patient_first_with_latest_values(servers, influx_bucket, ward_series):
    tables = query(servers, grafana_interpolate(ward_query(), bucket=influx_bucket, patient="", start=0, stop=0))
    rows = [r.values for table in tables for r in table.records]
    by_patient = {r["patient_id"]: r for r in rows}
    assert rows[0]["patient_id"] == "pt-sick"
    assert by_patient["pt-sick"]["news2"] == 7.0 and by_patient["pt-calm"]["news2"] == 0.0
    assert by_patient["pt-sick"]["spo2"] == pytest.approx(96 - 8 * 59 / 60, abs=0.01)
    assert by_patient["pt-sick"]["risk"] > 0.7 and by_patient["pt-calm"]["risk"] == pytest.approx(0.05)


def test_silent_devices_show_zero_readings(servers, influx_bucket, ward_series):
    tables = query(servers, grafana_interpolate(silent_devices_query(), bucket=influx_bucket, patient="", start=0, stop=0))
    rows = [r.values for table in tables for r in table.records]
    counts = {r["patient_id"]: r["readings_15m"] for r in rows}
    assert rows[0]["patient_id"] == "pt-quiet" and counts["pt-quiet"] == 0  # silent for an hour: first, at 0
    assert 14 <= counts["pt-sick"] <= 15 and 14 <= counts["pt-calm"] <= 15  # one a minute
    assert ward_series - rows[0]["last_seen"].timestamp() > 3500
