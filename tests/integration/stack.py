"""Helpers for the tests against the real servers that deploy/local starts (tests/run.sh does)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
