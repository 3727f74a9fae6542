"""The trend contract (tests/trends_contract.py) on the scaled path's store: the real InfluxDB, raw
points written exactly as the processor writes them, rollups by the same Flux as the rollup task."""

from __future__ import annotations

import time

import pytest

import trends_contract as contract
from vigil.shell.stores.influx import InfluxSeriesWriter, line_for, score_line
from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.trends.influx_rollup import InfluxRollups, task_name
from vigil.shell.trends.influx_trends import InfluxTrends

pytestmark = pytest.mark.integration


class InfluxWard:
    def __init__(self, servers: dict[str, str], bucket: str) -> None:
        from influxdb_client import InfluxDBClient

        url, token, org = servers["VIGIL_INFLUX_URL"], servers["VIGIL_INFLUX_TOKEN"], servers["VIGIL_INFLUX_ORG"]
        self.client = InfluxDBClient(url=url, token=token, org=org, timeout=60_000)
        self.writer = InfluxSeriesWriter(url, token, org, bucket)
        self.rollups = InfluxRollups(self.client, org, bucket)
        self.trends = InfluxTrends(self.client, org, bucket)
        self.times: list[float] = []

    def store(self, readings: list[ReadingRow], scores: list[ScoreRow]) -> None:
        self.writer.write_now([line_for(row) for row in readings] + [score_line(row) for row in scores])
        self.times += [row.t for row in readings] + [row.t for row in scores]

    def settle(self) -> None:
        """What the task does each minute, over the whole range; twice, as a replayed run would."""
        for _ in range(2):
            self.rollups.rebuild(min(self.times), max(self.times) + 1)

    def close(self) -> None:
        self.writer.close()
        self.client.close()


@pytest.fixture(scope="module")
def ward(servers):
    from influxdb_client import InfluxDBClient

    org = servers["VIGIL_INFLUX_ORG"]
    admin = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=org)
    bucket = admin.buckets_api().create_bucket(bucket_name=f"trends-{int(time.time() * 1000)}", org=org)
    ward = InfluxWard(servers, bucket.name)
    ward.data = contract.stored(ward)
    ward.settle()
    yield ward
    ward.close()
    admin.buckets_api().delete_bucket(bucket)
    admin.close()


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
    contract.check_ward(ward)


def test_refusals(ward):
    contract.check_refusals(ward)


def test_the_task_installs_once_and_rolls_up_the_last_minutes(ward):
    """The task InfluxDB runs every minute: installed twice, it exists once; run now, it rolls up
    a reading from three minutes ago."""
    task_id = ward.rollups.install_task()
    try:
        assert ward.rollups.install_task() == task_id
        tasks = ward.client.tasks_api()
        assert [t.id for t in tasks.find_tasks(name=task_name(ward.rollups.bucket))] == [task_id]
        t = (time.time() // 60) * 60 - 180 + 5
        ward.store([ReadingRow("pt-task", "ring-t", t, 1, hr=61.0, news2=1, news2_partial=True)], [])
        tasks.run_manually(task_id)
        deadline = time.monotonic() + 60
        buckets = []
        while not buckets and time.monotonic() < deadline:
            time.sleep(1)
            buckets = ward.trends.series("pt-task", "hr", t - 60, t + 60, 60)
        assert [(b.t, b.min, b.count) for b in buckets] == [(t - 5, 61.0, 1)]
        assert ward.trends.series("pt-task", "news2", t - 60, t + 60, 60)[0].partial is True
    finally:
        ward.client.tasks_api().delete_task(task_id)
