"""Fixtures for tests against the real servers that deploy/local starts (tests/run.sh does)."""

from __future__ import annotations

import os
import uuid

import pytest

from vigil.tools.stack import ServiceStack, run_topics


@pytest.fixture(scope="session")
def servers() -> dict[str, str]:
    if os.environ.get("VIGIL_INTEGRATION") != "1":
        pytest.skip("real servers not started here: tests/run.sh starts them with deploy/local/up")
    return {k: v for k, v in os.environ.items() if k.startswith("VIGIL_")}


@pytest.fixture
def run_id() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def influx_bucket(servers, run_id):
    from influxdb_client import InfluxDBClient

    client = InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"])
    buckets = client.buckets_api()
    bucket = buckets.create_bucket(bucket_name=f"vitals-{run_id}", org=servers["VIGIL_INFLUX_ORG"])
    yield bucket.name
    buckets.delete_bucket(bucket)
    client.close()


@pytest.fixture
def services(servers, run_id, influx_bucket, tmp_path):
    env = dict(os.environ)
    env.update(run_topics(run_id))
    env.update({
        "VIGIL_INFLUX_BUCKET": influx_bucket,
        "VIGIL_INFLUX_ROLLUP_BUCKET": influx_bucket,  # the run's own (deploy/local exports vitals-rollups)
        "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}",
        "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}",
        "VIGIL_LOG_LEVEL": "INFO",
    })
    running = ServiceStack(env, tmp_path, stop_grace_s=20)
    yield running
    running.stop()


