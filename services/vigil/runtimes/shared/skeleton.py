"""The service skeleton every aiohttp runtime shares: /healthz, /metrics, signals, graceful stop.

The embedded runtime, the gateway and the notifier each own one `ServiceSkeleton` and are its
`Service`. The Faust processor serves its own pages and takes only the health rule
(`vigil.runtimes.shared.health`).

A graceful stop runs in one order for every runtime: stop taking work, let the work already
taken become durable (stored, sent, acknowledged), close the runtime's parts, and only then
stop HTTP, so that /healthz answers while the runtime drains.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from vigil.runtimes.shared.heap import freeze_startup_heap
from vigil.runtimes.shared.health import http_status
from vigil.runtimes.shared.https import HttpTransport
from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, load_roster
from vigil.web.forwarded import add_trusted_proxies
from vigil.web.params import MAX_BODY_BYTES

log = logging.getLogger("vigil.service")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Service(Protocol):
    """What the skeleton asks of a runtime."""

    metrics: Metrics

    def health(self) -> dict[str, Any]:
        """The /healthz payload; its "status" comes from `health_status`."""
        ...

    def queue_depth(self) -> int:
        """Messages received and not yet handled, set on the queue-depth gauge at each scrape."""
        ...

    async def stop_intake(self) -> None:
        """Stop taking new work (consumers, processing loops)."""
        ...

    async def drain_in_flight(self) -> None:
        """Wait, bounded, for the work already taken to become durable and acknowledged."""
        ...

    async def close(self) -> None:
        """Close sources, channels, brokers and stores, in the order they depend on each other."""
        ...


class ServiceSkeleton:
    """HTTP (/healthz, /metrics and the runtime's own routes) and the graceful stop of one runtime."""

    def __init__(self, service: Service, *, host: str, port: int | None,
                 routes: Sequence[Callable[[web.Application], None]] = (),
                 transport: HttpTransport | None = None) -> None:
        self.service = service
        self.transport = transport or HttpTransport()  # TLS, HSTS, trusted proxies (https.py)
        self.host = host
        self.port = port  # None: no HTTP (a gateway started without --http-port)
        self.routes = routes
        self.http: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The runtime's HTTP app: /healthz and /metrics, then the routes it was given."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)  # larger bodies: 413, before any handler reads them
        add_trusted_proxies(app, self.transport.trusted_proxies)  # first: the audit and the limits see the client
        self.transport.add_to(app)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        for add_routes in self.routes:
            add_routes(app)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        health = self.service.health()
        return web.json_response(health, status=http_status(health))

    async def _metrics(self, _request: web.Request) -> web.Response:
        metrics = self.service.metrics
        metrics.queue_depth.set(self.service.queue_depth())
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def start_http(self) -> None:
        """Serve the app on host:port (nothing when the port is None): HTTPS only when a certificate is set."""
        if self.port is None:
            return
        self.http = web.AppRunner(self.app(), access_log=None)
        await self.http.setup()
        await web.TCPSite(self.http, self.host, self.port, ssl_context=self.transport.tls).start()
        self.transport.warn_if_plain(self.host, self.port)
        freeze_startup_heap()  # serving from now: start-up's objects out of full collections (shared/heap.py)

    async def stop(self) -> None:
        """Stop taking work, drain what was taken, close the parts, then stop HTTP."""
        service = self.service
        await service.stop_intake()
        await service.drain_in_flight()
        await service.close()
        if self.http is not None:
            await self.http.cleanup()
            self.http = None


async def until_signalled(work: asyncio.Task[None] | None = None) -> None:
    """Return on SIGINT or SIGTERM; or when `work` ends first, with its result (its error raised).

    The handlers stay installed: a second signal while the runtime drains is ignored rather
    than cutting the graceful stop short."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    signalled = asyncio.create_task(stop.wait(), name="stop-signal")
    waiting: set[asyncio.Task[Any]] = {signalled} if work is None else {signalled, work}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signalled.cancel()
    if work is not None and work.done() and not stop.is_set():
        work.result()  # raises what ended the work: the process exits with it, after the caller's stop


def registry_for(settings: VigilSettings) -> Registry:
    """The patients and devices of the roster in the settings (an empty registry without one)."""
    return Registry(load_roster(settings.roster)) if settings.roster else Registry()
