"""`vigil notifier`: the alert desk of the scaled mode, fed by the `vigil.alerts` topic.

It consumes alert records (a plain aiokafka consumer in its own group, manual commits), turns
them into incidents and outbox rows in PostgreSQL in one transaction per poll, and only then
commits the Kafka offsets: a crash replays records, and the desk's inbox table makes a replayed
record change nothing. The outbox dispatcher, the explanation worker, the incident API and the
in-app push streams run in the same process. Several notifiers can share the work: Kafka splits
the partitions, and the outbox is claimed row by row (FOR UPDATE SKIP LOCKED). It also runs the
scaled path's retention purge of PostgreSQL (runtimes/shared/sql_purge.py) every VIGIL_PURGE_EVERY_S.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import ValidationError

from vigil.shell.desk.desk import AlertChange
from vigil.runtimes.shared.alerting import AlertingService, cancel_tasks
from vigil.runtimes.shared.health import health_status
from vigil.runtimes.shared.https import HttpTransport
from vigil.runtimes.shared.sql_purge import SqlPurge
from vigil.runtimes.shared.skeleton import ServiceSkeleton, registry_for, until_signalled
from vigil.shell.streams.records import AlertRecord
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry
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
    """The notifier's composition root: store, alerting service and HTTP from the settings; the
    Kafka consumer once the event loop runs (`start`)."""

    def __init__(self, settings: VigilSettings, registry: Registry, *, group_id: str = "vigil-notifier",
                 http_port: int | None = None) -> None:
        settings.check_transport()  # the signed ward webhook: https, or http to loopback (docs/security.md)
        self.settings = settings
        self.group_id = group_id
        self.http_port = settings.http_port if http_port is None else http_port
        self.registry = registry
        self.metrics = Metrics()
        # When it purges the store (retention, below: only as the schema's owner) it sets the audit
        # trigger's window too; on its own role it may create nothing and leaves the window to `vigil migrate`.
        self.store = SqlStore(settings.database_url or settings.sqlite_url(),
                              audit_keep_days=settings.retain_audit_days if settings.notifier_purge else None)
        self.retention = SqlPurge(settings, self.store.engine, self.metrics)
        self.service = AlertingService(settings, self.registry, self.store.engine, self.store.write, self.metrics,
                                       clock=time.time)
        self.influx = self._ward_trends(settings)
        self.skeleton = ServiceSkeleton(self, host=settings.http_host, port=self.http_port,
                                        routes=(self.service.add_routes,),
                                        transport=HttpTransport.from_settings(settings))
        self.consumer: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        self.records = 0
        self.last_error: str | None = None

    def _ward_trends(self, settings: VigilSettings) -> Any:
        """The ward workspace's and the patient app's trends when InfluxDB is configured (without it
        the workspace shows incidents and coverage only): the scaled path's `scaled_trends`, the ward from PostgreSQL's
        rollups (kept by the processor) and charts from InfluxDB's."""
        if not settings.influx_token:
            return None
        from influxdb_client import InfluxDBClient

        from vigil.shell.trends.hybrid_trends import scaled_trends

        client = InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org,
                                timeout=10_000)
        self.service.ward.trends = scaled_trends(settings, self.store.engine, client)
        self.service.patients.trends = self.service.ward.trends  # the patient app's trends: the same store
        return client

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from vigil.shell.streams.kafka_login import kafka_security
        from vigil.shell.streams.topics import ensure_topics

        # A missing alerts topic would read as "not authorized" (this user may not create it): say which.
        await ensure_topics(self.settings, {self.settings.alerts_topic})
        self.consumer = AIOKafkaConsumer(
            self.settings.alerts_topic, bootstrap_servers=self.settings.kafka_bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
            # aiokafka fetches from a broker one request at a time; a long-poll over idle
            # partitions would hold back alerts on the others (processor/transport.py).
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms, **kafka_security(self.settings),
        )
        await self.consumer.start()
        self.service.start()
        await self.skeleton.start_http()
        self.tasks = [asyncio.create_task(self._consume(), name="alerts-consumer"),
                      asyncio.create_task(self._tick(), name="incident-timers")]
        if self.settings.notifier_purge:
            self.tasks.append(asyncio.create_task(self.retention.run_forever(), name="retention-purge"))
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

    def queue_depth(self) -> int:
        return 0  # the backlog waits in Kafka (consumer lag), not in this process

    def health(self) -> dict[str, Any]:
        running = all(not task.done() for task in self.tasks)
        undelivered = self.service.undelivered()  # a recipient reached on no channel: a monitoring failure
        return {"status": health_status(running=running, failing=self.last_error is not None or bool(undelivered)),
                "degraded_because": [r for r in (self.last_error, undelivered) if r], "records": self.records, "last_error": self.last_error, "alerting": self.service.health()}

    async def stop(self) -> None:
        """Stop gracefully (the skeleton's order: intake, in flight, parts, HTTP)."""
        await self.skeleton.stop()

    async def stop_intake(self) -> None:
        """Stop consuming and ticking. A poll whose offsets were not committed is read again after
        a restart, and the desk's inbox makes that change nothing."""
        await cancel_tasks(self.tasks)

    async def drain_in_flight(self) -> None:
        """Nothing: each poll is stored in one transaction before its offsets are committed."""

    async def close(self) -> None:
        await self.service.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.influx is not None:
            self.influx.close()
        self.store.close()


async def serve_notifier(settings: VigilSettings) -> int:
    """`vigil notifier`: consume alert records until SIGINT or SIGTERM, then stop gracefully."""
    notifier = Notifier(settings, registry_for(settings))
    await notifier.start()
    await until_signalled()
    await notifier.stop()
    return 0
