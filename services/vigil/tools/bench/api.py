"""`vigil bench api`: p50/p99 latency of `GET /api/incidents`, this code against a baseline, interleaved.

Each side is the embedded runtime's HTTP app in its own process (`serve` below, run with the
side's source tree first on PYTHONPATH), on the same seeded SQLite store: `patients` patients with
one incident each. The client logs in as a nurse of the ward when the side has logins
(`/api/login`), else asks anonymously (a baseline from before issue 11), then alternates blocks
of `block` requests between the sides, `requests` per side in all, one at a time over one
keep-alive connection. Without `--baseline`, only this code is measured.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from vigil.shell.observability.percentile import percentile
from vigil.tools.ports import free_port

PASSWORD = "bench passphrase 1"
# The server side, version-agnostic: only what both this code and the baseline have.
SERVE = """
import asyncio, sys, time
from pathlib import Path
from vigil.core.events import Alert
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.desk.desk import AlertChange
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import WriteBatch

async def main(data_dir, port, patients):
    roster = Roster.model_validate({"patients": [{"patient_id": f"pt-{i:04d}"} for i in range(patients)]})
    runtime = EmbeddedRuntime(VigilSettings(data_dir=Path(data_dir), http_port=port, models_enabled=False), Registry(roster))
    now = time.time()
    batch = WriteBatch()
    changes = []
    for i in range(patients):
        alert = Alert(f"al-{i:04d}", f"pt-{i:04d}", "hypoxaemia", "clinical", "high", "SpO2 low", {"spo2_pct": 90},
                      now - 300, now - i)
        batch.alerts.append(AlertRow.of(alert))
        changes.append(AlertChange("raised", alert, now - i))
    runtime.alerting.desk.take(changes, batch)
    runtime.writer.write_and_wait(batch)
    people = getattr(runtime.alerting, "people", None)
    if people is not None:
        from vigil.core.identity import Role
        people.accounts.add("bench", Role.NURSE, wards=["ward"], password=sys.argv[4])
    await runtime.skeleton.start_http()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def _source_path(root: Path) -> str:
    return os.pathsep.join(str(root / part) for part in ("services", "simulators", "models"))


def _start(root: Path | None, data_dir: Path, port: int, patients: int) -> subprocess.Popen[str]:
    env = dict(os.environ, VIGIL_LOG_LEVEL="WARNING")
    if root is not None:
        env["PYTHONPATH"] = _source_path(root)
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(data_dir), str(port), str(patients), PASSWORD], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the server of {root or 'this code'} did not start")
    return proc


async def _login(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with http.post(f"{base}/api/login", json={"username": "bench", "password": PASSWORD}) as response:
        if response.status == 404:
            return {}  # a baseline without logins
        assert response.status == 200, await response.text()
        return {"Cookie": f"vigil_session={response.cookies['vigil_session'].value}"}


async def _measure(sides: dict[str, str], requests: int, block: int) -> dict[str, list[float]]:
    took: dict[str, list[float]] = {name: [] for name in sides}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        headers = {name: await _login(http, base) for name, base in sides.items()}
        for name, base in sides.items():  # warm up: connections, caches, the first query plans
            for _ in range(20):
                async with http.get(f"{base}/api/incidents", headers=headers[name]) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
        while any(len(t) < requests for t in took.values()):
            for name, base in sides.items():
                for _ in range(min(block, requests - len(took[name]))):
                    started = time.perf_counter()
                    async with http.get(f"{base}/api/incidents", headers=headers[name]) as response:
                        await response.read()
                    took[name].append((time.perf_counter() - started) * 1000.0)
    return took


def bench_api(requests: int = 2000, patients: int = 200, block: int = 50, baseline: Path | None = None) -> dict[str, Any]:
    """Latency of GET /api/incidents (ms): this code (with a nurse's session), and `baseline`'s
    source tree (e.g. `git archive e2eb6cf services simulators models`) if given."""
    roots: dict[str, Path | None] = {"after": None}
    if baseline is not None:
        roots = {"before": baseline, **roots}
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="vigil-bench-api-") as tmp:
        try:
            sides = {}
            for name, root in roots.items():
                port = free_port()
                procs.append(_start(root, Path(tmp) / name, port, patients))
                sides[name] = f"http://127.0.0.1:{port}"
            took = asyncio.run(_measure(sides, requests, block))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    result: dict[str, Any] = {"requests_per_side": requests, "incidents": patients, "block": block}
    for name, values in took.items():
        result[name] = {"p50_ms": round(percentile(values, 0.5), 3), "p99_ms": round(percentile(values, 0.99), 3),
                        "mean_ms": round(sum(values) / len(values), 3)}
    if "before" in result:
        result["p50_ratio"] = round(result["after"]["p50_ms"] / result["before"]["p50_ms"], 3)
        result["p99_ratio"] = round(result["after"]["p99_ms"] / result["before"]["p99_ms"], 3)
    return result
