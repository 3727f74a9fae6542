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


@pytest.fixture(scope="session")
def store_rights(servers):
    """The shared schema current and every service role given its rights: `vigil migrate`, once, as the owner.
    The services then run on their own roles (tools/service_credentials.py), which may not create anything."""
    from stack import migrate_shared

    return migrate_shared(servers)


@pytest.fixture
def processor_token(servers, influx_bucket):
    """The processor's own token for this run's bucket: write only, that bucket only (as deploy/local's for `vitals`)."""
    from influxdb_client import InfluxDBClient

    from vigil.shell.stores.influx_tokens import create_service_token

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"],
                        org=servers["VIGIL_INFLUX_ORG"]) as client:
        authorization = create_service_token(client, client.buckets_api().find_bucket_by_name(influx_bucket), "processor")
        yield authorization.token
        client.authorizations_api().delete_authorization(authorization)


@pytest.fixture
def services(servers, run_id, influx_bucket, processor_token, store_rights, tmp_path):
    env = dict(os.environ)
    env.update(run_topics(run_id))
    env.update({
        "VIGIL_INFLUX_BUCKET": influx_bucket,
        "VIGIL_PROCESSOR_INFLUX_TOKEN": processor_token,
        "VIGIL_INFLUX_ROLLUP_BUCKET": influx_bucket,  # the run's own (deploy/local exports vitals-rollups)
        "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}",
        "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}",
        "VIGIL_LOG_LEVEL": "INFO",
    })
    running = ServiceStack(env, tmp_path, stop_grace_s=20)
    running.create_topics()  # as the Kafka admin: no service may create topics
    yield running
    running.stop()


