"""`vigil bench notify`: from an alert raised to its first channel, with the model fast, slow or down.

Each run raises `alerts` alerts (one new patient each, so each opens an incident) at `rate_hz`,
through the same path as the embedded runtime (desk → one SQLite transaction → dispatcher), and
measures the time from the raise to the first successful send of that incident (in-app push or a
signed webhook to a local receiver over real HTTP). Three modes, in the same run:

- templates: no language model (the baseline);
- llm_slow: a model endpoint that accepts connections and never answers;
- llm_down: a model endpoint that refuses connections.

The explanation worker talks to the model beside the alert; the target is that the alert does
not notice: p99 ≤ 1 s in every mode.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from vigil.core.events import Alert
from vigil.shell.desk.desk import AlertChange
from vigil.runtimes.shared.alerting import AlertingService
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.shell.notify.channels.webhook import SignedWebhook
from vigil.shell.observability.metrics import Metrics
from vigil.shell.observability.percentile import percentile
from vigil.shell.registry import Registry
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.tools.ports import free_port


def _alert(i: int, t: float) -> Alert:
    return Alert(alert_id=f"al-bench-{i:06d}", patient_id=f"bench-{i:05d}", kind="hypoxaemia", category="clinical",
                 severity="critical" if i % 3 == 0 else "high", rule="SpO2 <= 91 %", values={"spo2_pct": 88},
                 onset_t=t - 300, raised_t=t, news2={"score": 6, "band": "medium", "parameters": {"spo2": 3}, "missing": []},
                 contributors=[], model_version=None, cleared_t=None, baselines={"spo2": 96.0}, trends={})


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"p50_ms": round((percentile(values, 0.5) or 0.0) * 1000, 1),
            "p99_ms": round((percentile(values, 0.99) or 0.0) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


async def _silent_server() -> tuple[asyncio.base_events.Server, int]:
    """Accepts connections, reads, never answers: a model that hangs."""
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _run_mode(mode: str, alerts: int, rate_hz: float, workdir: Path) -> dict[str, Any]:
    received: dict[str, float] = {}

    async def receive(request: web.Request) -> web.Response:
        received[request.headers.get("Idempotency-Key", "")] = time.time()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    silent = None
    llm = None
    if mode == "llm_slow":
        silent, port = await _silent_server()
        llm = LlmConfig(base_url=f"http://127.0.0.1:{port}/v1", model="bench", timeout_s=4.0)
    elif mode == "llm_down":
        llm = LlmConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="bench", timeout_s=4.0)

    store = SqlStore(f"sqlite:///{workdir / f'{mode}.sqlite'}")
    settings = VigilSettings(data_dir=workdir, ward_webhook_url=f"http://127.0.0.1:{hook_port}/hook", notify_poll_s=0.5)
    channels = {"app": AppPush(PushHub()), "webhook": SignedWebhook(b"bench-secret")}
    service = AlertingService(settings, Registry(), store.engine, store.write, Metrics(), clock=time.time,
                              channels=channels, llm=llm)
    service.start()
    raised: dict[str, float] = {}
    try:
        started = time.time()
        for i in range(alerts):
            target = started + i / rate_hz
            await asyncio.sleep(max(0.0, target - time.time()))
            now = time.time()
            alert = _alert(i, now)
            batch = WriteBatch()
            service.desk.take([AlertChange("raised", alert, now)], batch)
            store.write(batch)
            service.desk.committed()
            raised[alert.alert_id] = now
        deadline = time.time() + 30
        while time.time() < deadline:
            rows = service.store.outbox_rows(status="sent", limit=100_000)
            if len({r["incident_id"] for r in rows}) >= alerts:
                break
            await asyncio.sleep(0.2)
        rows = service.store.outbox_rows(limit=100_000)
        first_sent: dict[str, float] = {}
        incident_alert: dict[str, str] = {}
        for row in rows:
            if row["payload"].get("alert"):
                incident_alert[row["incident_id"]] = row["payload"]["alert"]["alert_id"]
            if row["status"] == "sent":
                first_sent[row["incident_id"]] = min(first_sent.get(row["incident_id"], float("inf")), row["sent_t"])
        latencies = [first_sent[i] - raised[a] for i, a in incident_alert.items() if i in first_sent]
        webhook = [received[r["key"]] - raised[incident_alert[r["incident_id"]]]
                   for r in rows if r["channel"] == "webhook" and r["key"] in received]
        return {"alerts": alerts, "delivered": len(latencies), "first_channel": _percentiles(latencies),
                "webhook_received": _percentiles(webhook),
                "explanations_pending": service.worker.queue.qsize(), "explained": service.worker.done}
    finally:
        await service.stop()
        store.close()
        await runner.cleanup()
        if silent is not None:
            silent.close()


def bench_notify(alerts: int = 200, rate_hz: float = 20.0) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-notify-") as tmp:
        for mode in ("templates", "llm_slow", "llm_down"):
            results[mode] = asyncio.run(_run_mode(mode, alerts, rate_hz, Path(tmp)))
    base = results["templates"]["first_channel"]["p99_ms"] or 0.0
    return {
        "bench": "notify", "alerts_per_mode": alerts, "rate_hz": rate_hz, "modes": results,
        "p99_ratio_vs_templates": {m: (round(r["first_channel"]["p99_ms"] / base, 2) if base and r["first_channel"]["p99_ms"]
                                       else None) for m, r in results.items()},
        "target": "first channel within 1 s of the raise, p99, with the model slow or down",
        "target_met": all((r["first_channel"]["p99_ms"] or 1e9) <= 1000 and r["delivered"] == alerts for r in results.values()),
    }
