"""`vigil bench ward`: the ward workspace's two targets, over HTTP on the embedded runtime (SQLite).

- The ward overview of `patients` patients (default 1,000; the last hour at a reading every
  `every_s` seconds, a model score a minute, one patient in ten with an open incident): p50/p95
  of `GET /api/ward` from request to parsed JSON, signed in as a nurse of the ward, `repeats` times.
- Live update: an alert raised for a patient with no incident (the desk takes it and commits, as
  the pipeline does), until the console's push stream (`/api/stream?inbox=console`, the one the
  ward page listens to) delivers its event, and until the ward overview fetched then shows the
  patient's row with the open incident: what the page does before it draws. `alerts` alerts, one
  at a time. The browser's own drawing is not in the figure (tests/e2e/test_ward_browser.py).

Server and client share one process and event loop (the API's queries run in worker threads).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from vigil.tools.ports import free_port

PASSWORD = "bench passphrase 1"


def _p(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50_ms": round(values[len(values) // 2], 1), "p95_ms": round(values[max(0, math.ceil(0.95 * len(values)) - 1)], 1),
            "max_ms": round(values[-1], 1)}


def _alert(i: int, patient: str, now: float) -> Any:
    from vigil.core.events import Alert

    return Alert(f"al-bench-{i:05d}", patient, "hypoxaemia", "clinical", "high", "SpO2 < 91 %", {"spo2_pct": 89},
                 now - 60, now)


def _raise(runtime: Any, alerts: list[Any], now: float) -> None:
    from vigil.shell.desk.desk import AlertChange
    from vigil.shell.stores.rows import AlertRow
    from vigil.shell.stores.sql import WriteBatch

    batch = WriteBatch(alerts=[AlertRow.of(a) for a in alerts])
    runtime.alerting.desk.take([AlertChange("raised", a, now) for a in alerts], batch)
    runtime.writer.write_and_wait(batch)
    runtime.alerting.desk.committed()


def _build(data_dir: Path, port: int, patients: int, every_s: float, seed: int) -> Any:
    from vigil.core.identity import Role
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime
    from vigil.settings import VigilSettings
    from vigil.shell.registry import Registry, Roster
    from vigil.shell.stores.sql import WriteBatch
    from vigil.tools.bench.trends_data import _ward_rows

    roster = Roster.model_validate({"patients": [{"patient_id": f"pt-{p:05d}"} for p in range(patients)]})
    runtime = EmbeddedRuntime(VigilSettings(data_dir=data_dir, http_port=port, models_enabled=False,
                                            log_level="WARNING"), Registry(roster))
    now = time.time()
    for readings, scores in _ward_rows(patients, now, every_s, seed):
        runtime.store.write(WriteBatch(readings=readings, scores=scores))
    _raise(runtime, [_alert(p, f"pt-{p:05d}", now) for p in range(0, patients, 10)], now)
    runtime.alerting.people.accounts.add("bench", Role.NURSE, wards=["ward"], password=PASSWORD)
    return runtime


async def _overview(http: aiohttp.ClientSession, base: str, repeats: int) -> dict[str, Any]:
    """Request to parsed JSON on the client, and the server's own part (its Server-Timing header:
    the queries and the JSON, not the access audit's write nor the client's parse)."""
    times, server, rows, size = [], [], 0, 0
    for i in range(repeats + 1):
        started = time.perf_counter()
        async with http.get(f"{base}/api/ward") as response:
            body = await response.read()
            rows = len(json.loads(body)["rows"])
            took = float(response.headers["Server-Timing"].split("dur=")[1])
        if i:  # the first warms the caches
            times.append((time.perf_counter() - started) * 1000)
            server.append(took)
            size = len(body)
    return {"rows": rows, "bytes": size, "request_to_data": _p(times), "server": _p(server)}


async def _stream_events(http: aiohttp.ClientSession, base: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """When the console's stream first tells of each alert (by alert id)."""
    async with http.get(f"{base}/api/stream?inbox=console") as response:
        ready.set()
        async for line in response.content:
            if line.startswith(b"data: "):
                alert = (json.loads(line[6:]).get("payload") or {}).get("alert") or {}
                if alert.get("alert_id"):
                    seen.setdefault(alert["alert_id"], time.perf_counter())


async def _live(runtime: Any, http: aiohttp.ClientSession, base: str, patients: int, alerts: int) -> dict[str, Any]:
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    reader = asyncio.create_task(_stream_events(http, base, seen, ready))
    await ready.wait()
    to_event, to_row = [], []
    for i in range(alerts):
        patient = f"pt-{(10 * i + 5) % patients:05d}"
        alert = _alert(100_000 + i, patient, time.time())
        started = time.perf_counter()
        await asyncio.to_thread(_raise, runtime, [alert], time.time())
        while alert.alert_id not in seen:
            await asyncio.sleep(0.002)
        to_event.append((seen[alert.alert_id] - started) * 1000)
        async with http.get(f"{base}/api/ward?unacknowledged=1") as response:
            shown = any(r["patient_id"] == patient for r in (await response.json())["rows"])
        assert shown, f"{patient}'s row did not show its incident"
        to_row.append((time.perf_counter() - started) * 1000)
    reader.cancel()
    return {"alerts": alerts, "to_stream_event": _p(to_event), "to_row_in_overview": _p(to_row)}


async def _run(patients: int, every_s: float, repeats: int, alerts: int, seed: int) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runtime = _build(Path(tmp), port, patients, every_s, seed)
        built_s = time.perf_counter() - started
        runtime.alerting.start()
        await runtime.skeleton.start_http()
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for 127.0.0.1
                async with http.post(f"{base}/api/login", json={"username": "bench", "password": PASSWORD}) as response:
                    csrf = (await response.json())["csrf_token"]
                http.headers["X-CSRF-Token"] = csrf
                overview = await _overview(http, base, repeats)
                live = await _live(runtime, http, base, patients, alerts)
        finally:
            await runtime.stop()
    return {"bench": "ward", "store": "sqlite", "patients": patients, "every_s": every_s, "build_s": round(built_s, 1),
            "ward_overview": overview, "live_update": live,
            "targets": {"ward_overview_p95_ms": 500, "live_update_p95_ms": 2000}}


def bench_ward(patients: int = 1000, every_s: float = 15.0, repeats: int = 40, alerts: int = 30, seed: int = 7) -> dict[str, Any]:
    return asyncio.run(_run(patients, every_s, repeats, alerts, seed))
