"""The scaled path's InfluxDB retention on the real server (issue 15, "Data at rest"): the readings'
bucket kept VIGIL_RETAIN_READINGS_DAYS, the rollups in a bucket of their own kept longer
(VIGIL_RETAIN_ROLLUPS_DAYS), set through the API by `vigil retention influx`; a point older than its
bucket's retention is not kept; the rollup task writes `rollup_1m` to the rollup bucket, where the
trend queries read it. Buckets are this test's own, deleted afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import trends_contract as contract
from test_trends_influx import InfluxWard
from vigil.shell.stores.influx import InfluxSeriesWriter
from vigil.shell.trends.influx_buckets import apply_retention
from vigil.shell.trends.influx_rollup import InfluxRollups
from vigil.shell.trends.influx_trends import InfluxTrends

pytestmark = pytest.mark.integration
DAY = 86400


@pytest.fixture
def influx(servers):
    from influxdb_client import InfluxDBClient

    client = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"],
                            org=servers["VIGIL_INFLUX_ORG"], timeout=60_000)
    made: list[str] = []
    yield client, made
    buckets = client.buckets_api()
    for name in made:
        bucket = buckets.find_bucket_by_name(name)
        if bucket is not None:
            buckets.delete_bucket(bucket)
    client.close()


def rule_s(client, name: str) -> int:
    bucket = client.buckets_api().find_bucket_by_name(name)
    return (bucket.retention_rules[0].every_seconds or 0) if bucket.retention_rules else 0


def count(client, org: str, bucket: str, measurement: str) -> int:
    flux = (f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "{measurement}") '
            '|> group() |> count()')
    tables = client.query_api().query(flux, org=org)
    return sum(int(record.get_value()) for table in tables for record in table.records)


def test_readings_kept_their_days_rollups_longer_in_their_own_bucket(servers, influx, run_id):
    client, made = influx
    org = servers["VIGIL_INFLUX_ORG"]
    raw, rollups = f"vitals-{run_id}", f"vitals-{run_id}-rollups"
    client.buckets_api().create_bucket(bucket_name=raw, org=org)  # infinite, as deploy/local made `vitals`
    made += [raw, rollups]

    done = apply_retention(client, org, raw, 2, rollups, 30)
    assert [(d.bucket, d.retention_s, d.changed, d.created) for d in done] == [
        (raw, 2 * DAY, True, False), (rollups, 30 * DAY, True, True)]
    assert rule_s(client, raw) == 2 * DAY and rule_s(client, rollups) == 30 * DAY
    assert [d.changed for d in apply_retention(client, org, raw, 2, rollups, 30)] == [False, False]  # idempotent

    now = time.time()
    writer = InfluxSeriesWriter(servers["VIGIL_INFLUX_URL"], servers["VIGIL_INFLUX_TOKEN"], org, raw)
    try:
        writer.write_now([f"vitals,patient_id=pt-1,device_id=wr-1 hr=71,seq=1i {int((now - 600) * 1e9)}",
                          f"vitals,patient_id=pt-1,device_id=wr-1 hr=72,seq=2i {int((now - 540) * 1e9)}"])
        try:  # InfluxDB drops a point older than its bucket's retention (a 422 for the write)
            writer.write_now([f"vitals,patient_id=pt-1,device_id=wr-1 hr=60,seq=0i {int((now - 3 * DAY) * 1e9)}"])
        except Exception as exc:  # noqa: BLE001 - the client's ApiException: what matters is what is kept
            assert "retention" in str(exc) or "422" in str(exc)
    finally:
        writer.close()
    assert count(client, org, raw, "vitals") == 4  # hr and seq of the two recent points; the old one not kept

    InfluxRollups(client, org, raw, rollups).rebuild(now - 900, now)
    assert count(client, org, rollups, "rollup_1m") > 0 and count(client, org, raw, "rollup_1m") == 0
    # A rollup three days old is past the readings' retention and within the rollups': kept.
    from influxdb_client.client.write_api import SYNCHRONOUS

    api = client.write_api(write_options=SYNCHRONOUS)
    api.write(bucket=rollups, org=org, record=f"rollup_1m,patient_id=pt-1,device_id=wr-1 hr_n=1i {int((now - 3 * DAY) * 1e9)}")
    assert count(client, org, rollups, "rollup_1m") >= 2
    series = InfluxTrends(client, org, raw, rollups).series("pt-1", "hr", now - 900, now, 60)
    assert sum(bucket.count for bucket in series) == 2  # trends read the rollups from their bucket


def test_trend_queries_with_the_rollups_in_their_own_bucket(servers, influx, run_id):
    """The trend contract's series and ward queries, rollups written to and read from a second bucket."""
    client, made = influx
    org = servers["VIGIL_INFLUX_ORG"]
    raw, rollups = f"trends-{run_id}", f"trends-{run_id}-rollups"
    for name in (raw, rollups):
        client.buckets_api().create_bucket(bucket_name=name, org=org)
        made.append(name)
    ward = InfluxWard(servers, raw)
    ward.rollups = InfluxRollups(ward.client, org, raw, rollups)
    ward.trends = InfluxTrends(ward.client, org, raw, rollups)
    try:
        ward.data = contract.stored(ward)
        ward.settle()
        contract.check_series_equal_the_rows(ward, ward.data)
        contract.check_ward(ward)
    finally:
        ward.close()


def test_vigil_retention_influx(servers, influx, run_id):
    client, made = influx
    org = servers["VIGIL_INFLUX_ORG"]
    raw, rollups = f"vitals-{run_id}", f"vitals-{run_id}-rollups"
    client.buckets_api().create_bucket(bucket_name=raw, org=org)
    made += [raw, rollups]
    env = dict(os.environ, VIGIL_INFLUX_BUCKET=raw, VIGIL_INFLUX_ROLLUP_BUCKET=rollups, VIGIL_RETAIN_READINGS_DAYS="400",
               VIGIL_RETAIN_ROLLUPS_DAYS="1095")
    done = subprocess.run([sys.executable, "-m", "vigil.cli", "retention", "influx"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"bucket": raw, "retention_s": 400 * DAY, "changed": True, "created": False},
        {"bucket": rollups, "retention_s": 1095 * DAY, "changed": True, "created": True}]
    assert rule_s(client, raw) == 400 * DAY and rule_s(client, rollups) == 1095 * DAY
