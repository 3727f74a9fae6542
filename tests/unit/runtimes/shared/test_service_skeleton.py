"""The shared service skeleton: the ok/degraded/down rule, /healthz and /metrics answers, the
graceful stop order, and signals; and the runtimes that use it, served by aiohttp's test client."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from vigil.runtimes.shared.health import health_status, http_status
from vigil.runtimes.shared.skeleton import ServiceSkeleton, registry_for, until_signalled
from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry


class FakeService:
    """A runtime as the skeleton sees it; records the stop phases, and what /healthz said meanwhile."""

    def __init__(self, status: str = "ok", depth: int = 0) -> None:
        self.metrics = Metrics()
        self.status = status
        self.depth = depth
        self.calls: list[str] = []
        self.url: str | None = None  # where /healthz is asked while the service drains
        self.health_while_draining: int | None = None

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "queue_depth": self.depth}

    def queue_depth(self) -> int:
        return self.depth

    async def stop_intake(self) -> None:
        self.calls.append("stop_intake")

    async def drain_in_flight(self) -> None:
        self.calls.append("drain_in_flight")
        if self.url is not None:
            async with ClientSession() as session, session.get(self.url) as response:
                self.health_while_draining = response.status

    async def close(self) -> None:
        self.calls.append("close")


@pytest.mark.parametrize(("running", "failing", "status", "code"), [
    (True, False, "ok", 200),
    (True, True, "degraded", 200),
    (False, False, "down", 503),
    (False, True, "down", 503),
])
def test_the_health_rule_and_its_http_status(running, failing, status, code):
    assert health_status(running=running, failing=failing) == status
    assert http_status({"status": status}) == code


@pytest.mark.parametrize(("status", "code"), [("ok", 200), ("degraded", 200), ("down", 503)])
async def test_healthz_answers_the_service_health_with_its_status_code(status, code):
    service = FakeService(status)
    async with TestClient(TestServer(ServiceSkeleton(service, host="127.0.0.1", port=None).app())) as client:
        response = await client.get("/healthz")
        assert response.status == code
        assert await response.json() == {"status": status, "queue_depth": 0}


async def test_metrics_sets_the_queue_depth_and_answers_prometheus_text():
    service = FakeService(depth=7)
    service.metrics.readings.inc(3)
    async with TestClient(TestServer(ServiceSkeleton(service, host="127.0.0.1", port=None).app())) as client:
        response = await client.get("/metrics")
        assert response.status == 200 and response.content_type == "text/plain" and response.charset == "utf-8"
        text = await response.text()
    assert "vigil_readings_accepted_total 3.0" in text
    assert any(line.startswith("vigil_") and "queue" in line and line.endswith(" 7.0") for line in text.splitlines())


async def test_the_runtime_routes_are_added_after_healthz_and_metrics():
    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"hello": "ward"})

    skeleton = ServiceSkeleton(FakeService(), host="127.0.0.1", port=None,
                               routes=(lambda app: app.router.add_get("/api/hello", hello),))
    async with TestClient(TestServer(skeleton.app())) as client:
        assert await (await client.get("/api/hello")).json() == {"hello": "ward"}
        assert (await client.get("/healthz")).status == 200


async def test_graceful_stop_runs_intake_drain_close_then_http(http_port):
    service = FakeService()
    skeleton = ServiceSkeleton(service, host="127.0.0.1", port=http_port)
    await skeleton.start_http()
    assert skeleton.http is not None
    service.url = f"http://127.0.0.1:{http_port}/healthz"  # must still answer while the service drains
    await skeleton.stop()
    assert service.calls == ["stop_intake", "drain_in_flight", "close"]
    assert service.health_while_draining == 200
    assert skeleton.http is None
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", http_port)


async def test_no_port_means_no_http():
    service = FakeService()
    skeleton = ServiceSkeleton(service, host="127.0.0.1", port=None)
    await skeleton.start_http()
    assert skeleton.http is None
    await skeleton.stop()
    assert service.calls == ["stop_intake", "drain_in_flight", "close"]


async def test_until_signalled_returns_on_sigterm():
    waiting = asyncio.create_task(until_signalled())
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(waiting, 5)


async def test_until_signalled_raises_the_error_that_ended_the_work():
    async def work() -> None:
        raise ConnectionError("kafka is away")

    with pytest.raises(ConnectionError, match="kafka is away"):
        await asyncio.wait_for(until_signalled(asyncio.create_task(work())), 5)


def test_registry_for_reads_the_roster_or_is_empty(tmp_path):
    assert len(registry_for(VigilSettings(data_dir=tmp_path))) == 0
    roster = tmp_path / "roster.yaml"
    roster.write_text("version: 1\npatients:\n  - patient_id: pt-a\n    devices: [{device_id: wr-a}]\n")
    registry = registry_for(VigilSettings(data_dir=tmp_path, roster=roster))
    assert len(registry) == 1 and registry.patient_for_device("wr-a") == "pt-a"


# -- the runtimes, through their skeleton ------------------------------------------------------


async def test_embedded_runtime_serves_health_metrics_and_the_operator_api(tmp_path):
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime

    from vigil.core.identity import Role

    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False, api_token="service-token-1"),
                              Registry())
    runtime.alerting.people.accounts.add("admin", Role.WARD_ADMIN, wards=["ward"], password="a long passphrase")
    service = {"Authorization": "Bearer service-token-1"}
    try:
        async with TestClient(TestServer(runtime.skeleton.app())) as client:
            health = await client.get("/healthz")
            assert health.status == 503  # not started: no MQTT source, so down
            body = await health.json()
            assert body["status"] == "down" and body["models"] == {"enabled": False, "loaded": False}
            assert {"mqtt", "store", "queue_depth", "patients", "readings", "rejected", "scoring", "models", "alerting",
                    "uptime_s", "last_error"} <= set(body)
            assert "vigil_readings_accepted_total" in await (await client.get("/metrics")).text()
            assert (await client.get("/api/alerts")).status == 401  # nobody reads without credentials
            assert await (await client.get("/api/alerts", headers=service)).json() == []
            assert await (await client.get("/api/incidents", headers=service)).json() == []  # the alerting routes are there
            assert (await client.post("/api/login", json={"username": "admin", "password": "a long passphrase"})).status == 200
            assert await (await client.get("/api/dead-letters")).json() == []
    finally:
        await runtime.stop()  # never started: the stop phases have nothing to wait for


async def test_gateway_health_is_down_until_connected_and_stop_finishes_the_loop(tmp_path):
    from vigil.runtimes.gateway.gateway import Gateway

    gateway = Gateway(VigilSettings(data_dir=tmp_path), Registry(), http_port=0)
    assert gateway.skeleton.port is None  # no --http-port: no HTTP
    async with TestClient(TestServer(gateway.skeleton.app())) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        assert set(await response.json()) == {"status", "gateway_id", "mqtt_connected", "queue_depth",
                                              "forwarded_readings", "rejected", "last_error"}

    class Source:
        depth = 0
        stopped = False

        async def take(self, _limit: int, timeout: float) -> list:
            await asyncio.sleep(timeout)
            return []

        def stop(self) -> None:
            self.stopped = True

    source = Source()
    gateway.source = source  # type: ignore[assignment]
    gateway.forwarding = asyncio.create_task(gateway.run())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(gateway.stop(), 5)
    assert gateway.forwarding.done() and gateway.forwarding.exception() is None and source.stopped


async def test_notifier_health_keeps_its_keys(tmp_path):
    from vigil.runtimes.notifier.notifier import Notifier

    notifier = Notifier(VigilSettings(data_dir=tmp_path), Registry())
    try:
        async with TestClient(TestServer(notifier.skeleton.app())) as client:
            response = await client.get("/healthz")
            assert response.status == 200
            body = await response.json()
            assert set(body) == {"status", "degraded_because", "records", "last_error", "alerting"} and body["status"] == "ok" and body["degraded_because"] == []
            assert "vigil_" in await (await client.get("/metrics")).text()
    finally:
        await notifier.stop()


async def test_the_alerting_service_gives_the_desk_its_doorbell_at_construction(tmp_path):
    from vigil.runtimes.shared.alerting import AlertingService
    from vigil.shell.stores.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'desk.sqlite'}")
    try:
        service = AlertingService(VigilSettings(data_dir=tmp_path), Registry(), store.engine, store.write, Metrics(),
                                  clock=lambda: 0.0, channels={})
        assert service.desk.wake == service.dispatcher.wake
        assert not service.dispatcher._doorbell.is_set()
        service.desk.committed()  # new outbox rows are durable: the dispatcher looks now
        assert service.dispatcher._doorbell.is_set()
    finally:
        store.close()
