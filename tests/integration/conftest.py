"""Fixtures for tests against the real servers that deploy/local starts (tests/run.sh does)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def influx_count(servers: dict[str, str], bucket: str) -> int:
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                '|> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq") |> group() |> count()')
        tables = client.query_api().query(flux)
        return sum(int(record.get_value()) for table in tables for record in table.records)


def influx_counts_by_patient(servers: dict[str, str], bucket: str) -> dict[str, int]:
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=servers["VIGIL_INFLUX_URL"], token=servers["VIGIL_INFLUX_TOKEN"], org=servers["VIGIL_INFLUX_ORG"]) as client:
        flux = (f'from(bucket: "{bucket}") |> range(start: 0) '
                '|> filter(fn: (r) => r._measurement == "vitals" and r._field == "seq") |> group(columns: ["patient_id"]) |> count()')
        return {record.values["patient_id"]: int(record.get_value())
                for table in client.query_api().query(flux) for record in table.records}


def enrol_devices(devices: list[str], password_for) -> None:
    lines = "".join(f"{d} {password_for(d)}\n" for d in devices)
    subprocess.run([str(REPO / "deploy/local/mqtt-device"), "add-many"], input=lines, text=True, check=True,
                   capture_output=True)


class Services:
    """Vigil processes started as an operator would: `vigil ingest`, `vigil processor worker`."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", *args], env=self.env, stdout=log, stderr=log,
                                cwd=self.workdir)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def services(servers, run_id, influx_bucket, tmp_path):
    env = dict(os.environ)
    env.update({
        "VIGIL_READINGS_TOPIC": f"vigil.readings.{run_id}",
        "VIGIL_ALERTS_TOPIC": f"vigil.alerts.{run_id}",
        "VIGIL_DEADLETTER_TOPIC": f"vigil.deadletter.{run_id}",
        "VIGIL_INFLUX_BUCKET": influx_bucket,
        "VIGIL_MQTT_SHARED_GROUP": f"ingest-{run_id}",
        "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-{run_id}",
        "VIGIL_LOG_LEVEL": "INFO",
    })
    running = Services(env, tmp_path)
    yield running
    running.stop_all()


def write_roster(path: Path, roster: dict) -> Path:
    path.write_text(yaml.safe_dump(roster, sort_keys=False))
    return path


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
