"""The trend contract (tests/trends_contract.py) on the scaled path's `HybridTrends`: the ward from
PostgreSQL, kept by the processor's `SqlStore.write` of each batch (replays included), and charts from
the real InfluxDB's `rollup_1m`, both fed the same batches; one answer whichever store gives it."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import create_engine, text

import trends_contract as contract
from test_trends_influx import InfluxWard
from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.trends.hybrid_trends import HybridTrends

pytestmark = pytest.mark.integration


class HybridWard:
    """Each batch to both stores, as the processor stores it (InfluxDB, then PostgreSQL)."""

    def __init__(self, influx: InfluxWard, sql: contract.SqlWard) -> None:
        self.influx, self.sql = influx, sql
        self.trends = HybridTrends(sql.trends, influx.trends)

    def store(self, readings: list[ReadingRow], scores: list[ScoreRow]) -> None:
        self.influx.store(readings, scores)
        self.sql.store(readings, scores)


@pytest.fixture(scope="module")
def ward(servers):
    from influxdb_client import InfluxDBClient

    org, url = servers["VIGIL_INFLUX_ORG"], servers["VIGIL_DATABASE_URL"]
    admin = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=org)
    bucket = admin.buckets_api().create_bucket(bucket_name=f"trends-hybrid-{int(time.time() * 1000)}", org=org)
    schema = "trends_" + uuid.uuid4().hex[:8]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    influx = InfluxWard(servers, bucket.name)
    sql = contract.SqlWard(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    try:
        ward = HybridWard(influx, sql)
        ward.data = contract.stored(ward)
        influx.settle()
        yield ward
    finally:
        influx.close()
        sql.sql.close()
        admin.buckets_api().delete_bucket(bucket)
        admin.close()
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_series_equal_the_rows_for_every_vital_and_step(ward):
    contract.check_series_equal_the_rows(ward, ward.data)


def test_series_equal_the_raw_scan(ward):
    contract.check_series_equal_the_raw_scan(ward)


def test_a_dip_shows_as_a_minimum(ward):
    contract.check_a_dip_shows_as_a_minimum(ward)


def test_news2_buckets_say_partial(ward):
    contract.check_news2_buckets_say_partial(ward)


def test_latest(ward):
    contract.check_latest(ward, ward.data)


def test_ward(ward):
    """The ward's sparklines (PostgreSQL) equal the chart's buckets (InfluxDB) over the same hour."""
    contract.check_ward(ward)


def test_refusals(ward):
    contract.check_refusals(ward)
