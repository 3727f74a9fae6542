"""`vigil notifier`: the alert desk of the scaled mode, fed by the `vigil.alerts` topic.

It consumes alert records (a plain aiokafka consumer in its own group, manual commits), turns
them into incidents and outbox rows in PostgreSQL in one transaction per poll, and only then
commits the Kafka offsets: a crash replays records, and the desk's inbox table makes a replayed
record change nothing. The outbox dispatcher, the explanation worker, the incident API and the
in-app push streams run in the same process. Several notifiers can share the work: Kafka splits
the partitions, and the outbox is claimed row by row (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from vigil.shell.desk.desk import AlertChange
from vigil.runtimes.shared.alerting import AlertingService, cancel_tasks
from vigil.shell.streams.records import AlertRecord
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, load_roster
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import SqlStore, WriteBatch

log = logging.getLogger("vigil.notifier")


def changes_from(values: list[bytes]) -> tuple[list[AlertChange], int]:
    """Alert changes from raw `vigil.alerts` values; score records are skipped. Returns the
    changes and how many values could not be read (logged; they stay in Kafka for inspection)."""
    changes: list[AlertChange] = []
    unreadable = 0
    for value in values:
        if b'"type":"alert"' not in value.replace(b" ", b""):
            continue
        try:
            record = AlertRecord.model_validate_json(value)
        except ValidationError as exc:
            unreadable += 1
            log.error("unreadable alert record", extra={"error": str(exc.errors(include_url=False)[:1])[:300]})
            continue
        alert = record.alert.to_alert()
        t = record.t if record.t is not None else float(alert.cleared_t or alert.raised_t or 0.0)
        changes.append(AlertChange(record.event, alert, t))
    return changes, unreadable


class Notifier:
    def __init__(self, settings: VigilSettings, *, group_id: str = "vigil-notifier", http_port: int | None = None) -> None:
        self.settings = settings
        self.group_id = group_id
        self.http_port = settings.http_port if http_port is None else http_port
        self.registry = Registry(load_roster(settings.roster)) if settings.roster else Registry()
        self.metrics = Metrics()
        self.store = SqlStore(settings.database_url or settings.sqlite_url())
        self.service = AlertingService(settings, self.registry, self.store.engine, self.store.write, self.metrics,
                                       clock=time.time)
        self.consumer: Any = None
        self.http: web.AppRunner | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.records = 0
        self.last_error: str | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self.consumer = AIOKafkaConsumer(
            self.settings.alerts_topic, bootstrap_servers=self.settings.kafka_bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
            # aiokafka fetches from a broker one request at a time; a long-poll over idle
            # partitions would hold back alerts on the others (processor/transport.py).
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
        )
        await self.consumer.start()
        self.service.start()
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self.service.add_routes(app)
        self.http = web.AppRunner(app, access_log=None)
        await self.http.setup()
        await web.TCPSite(self.http, self.settings.http_host, self.http_port).start()
        self.tasks = [asyncio.create_task(self._consume(), name="alerts-consumer"),
                      asyncio.create_task(self._tick(), name="incident-timers")]
        log.info("notifier running", extra={"topic": self.settings.alerts_topic, "group": self.group_id,
                                            "http_port": self.http_port, "patients": len(self.registry)})

    async def _consume(self) -> None:
        while True:
            polled = await self.consumer.getmany(timeout_ms=200, max_records=500)
            values = [message.value for messages in polled.values() for message in messages]
            if not values:
                continue
            changes, _ = changes_from(values)
            while True:
                try:
                    self._apply(changes)
                    break
                except Exception as exc:  # the database is away: hold the offsets, retry the same records
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("alert records not stored; retrying", extra={"records": len(values)})
                    await asyncio.sleep(1.0)
            await self.consumer.commit()
            self.records += len(values)
            self.last_error = None

    def _apply(self, changes: list[AlertChange]) -> None:
        batch = WriteBatch()
        try:
            self.service.desk.take(changes, batch)
            self.store.write(batch)
        except Exception:
            self.service.desk.restore()
            raise
        self.service.desk.committed()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.service.tick(time.time())
            except Exception:
                log.exception("incident timers failed")

    def health(self) -> dict[str, Any]:
        running = all(not task.done() for task in self.tasks)
        return {"status": "ok" if running and self.last_error is None else ("degraded" if running else "down"),
                "records": self.records, "last_error": self.last_error, "alerting": self.service.health()}

    async def _healthz(self, _request: web.Request) -> web.Response:
        health = self.health()
        return web.json_response(health, status=503 if health["status"] == "down" else 200)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def stop(self) -> None:
        await cancel_tasks(self.tasks)
        await self.service.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.http is not None:
            await self.http.cleanup()
        self.store.close()


async def serve_notifier(settings: VigilSettings) -> int:
    notifier = Notifier(settings)
    await notifier.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await notifier.stop()
    return 0
