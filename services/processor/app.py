"""`vigil processor worker`: the Faust app. Agents are a few lines; the work is in the core.

Per-patient state is a PatientMonitor, pickled into a Faust table whose changelog topic is
co-partitioned with `vigil.readings` (same key bytes, same partitioner): a worker that restarts,
or takes over a partition in a rebalance, recovers each patient's state from the changelog.
Each batch (`stream.take`) goes through the same Pipeline as the embedded mode; then readings go
to InfluxDB, alert events and scores to `vigil.alerts`, refusals to `vigil.deadletter`, alert
rows to PostgreSQL (one row per alert id: a replayed batch never announces an alert twice).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
import time
from collections import Counter
from typing import Any

import faust

from vigil.contract.records import AlertRecord, DeadLetterRecord, ReadingsRecord, ScoreRecord
from vigil.core.patient import PatientMonitor
from vigil.embedded.pipeline import AnnouncedAlert, Message, Pipeline
from vigil.observability.metrics import Metrics
from vigil.processor.influx import InfluxSeriesWriter
from vigil.registry import Registry, load_roster
from vigil.scoring.setup import model_stage_for
from vigil.settings import VigilSettings
from vigil.stores.sql import SqlStore, WriteBatch

log = logging.getLogger("vigil.processor")
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.2


class CollectingSink:
    """Lets the shared Pipeline decide; the agent then writes asynchronously to each sink."""

    def __init__(self, alert_store: SqlStore) -> None:
        self.alert_store = alert_store
        self.pending = WriteBatch()

    def write(self, batch: WriteBatch) -> None:
        self.pending = batch

    def known_alerts(self, alert_ids: list[str]) -> set[str]:
        return self.alert_store.known_alerts(alert_ids)


class BatchTimings:
    """Where a worker's time goes, per batch: for /healthz and the latency bench."""

    def __init__(self) -> None:
        self.count = 0
        self.records = 0
        self.sums: Counter[str] = Counter()
        self.slowest: list[tuple[float, int, dict[str, float]]] = []
        self.received_to_alert_sent: list[float] = []

    def batch(self, records: int, stages: dict[str, float]) -> None:
        self.count += 1
        self.records += records
        self.sums.update(stages)
        self.slowest.append((stages["total"], records, stages))
        if len(self.slowest) > 20:
            self.slowest.sort(key=lambda item: item[0], reverse=True)
            del self.slowest[10:]

    def alert_sent(self, seconds: float) -> None:
        if len(self.received_to_alert_sent) < 100_000:
            self.received_to_alert_sent.append(seconds)

    def report(self) -> dict[str, Any]:
        slowest = sorted(self.slowest, key=lambda item: item[0], reverse=True)[:5]
        waits = sorted(self.received_to_alert_sent)
        return {"count": self.count, "records": self.records,
                "mean_ms": {k: round(v / max(self.count, 1) * 1000, 2) for k, v in self.sums.items()},
                "slowest": [{"records": n, **{k: round(v * 1000, 1) for k, v in stages.items()}} for _, n, stages in slowest],
                # gateway receipt of the oldest record in a batch -> its alerts handed to the producer
                "received_to_alert_sent_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
                "received_to_alert_sent_p99_s": round(waits[int(0.99 * (len(waits) - 1))], 3) if waits else None}


def build_app(settings: VigilSettings, *, web_port: int | None = None) -> faust.App:
    brokers = [f"kafka://{hostport.strip()}" for hostport in settings.kafka_bootstrap.split(",")]
    app = faust.App(
        settings.processor_app_id,
        broker=brokers,
        store="memory://",
        datadir=str(settings.processor_data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_host="127.0.0.1",
        web_port=web_port or settings.processor_web_port,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=BATCH_MAX,
        broker_commit_interval=1.0,
    )
    readings_topic = app.topic(settings.readings_topic, key_serializer="raw", value_serializer="raw",
                               partitions=settings.topic_partitions)
    alerts_topic = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    deadletter_topic = app.topic(settings.deadletter_topic, key_serializer="raw", value_serializer="raw")
    states = app.Table("patient-state", default=None, key_type=bytes, value_type=bytes,
                       partitions=settings.topic_partitions, use_partitioner=True)

    registry = Registry(load_roster(settings.roster)) if settings.roster else Registry()
    metrics = Metrics()
    alert_store = SqlStore(settings.database_url or settings.sqlite_url())
    sink = CollectingSink(alert_store)
    announced: list[AnnouncedAlert] = []
    pipeline = Pipeline(registry, sink, metrics, announce=announced.append)
    stage, models_status = model_stage_for(settings.models_enabled, settings.model_dir)
    pipeline.model_stage = stage
    influx = InfluxSeriesWriter(settings.influx_url, settings.influx_token, settings.influx_org, settings.influx_bucket)
    app.vigil = {"pipeline": pipeline, "influx": influx, "metrics": metrics}  # type: ignore[attr-defined]

    # Patients' state stays in memory between batches; the table (changelog) is its durable
    # copy. After a rebalance the cache is dropped and state is read back from the table.
    cache: dict[str, PatientMonitor] = {}

    def load(patient_id: str) -> PatientMonitor:
        monitor = cache.get(patient_id)
        if monitor is None:
            blob = states.get(patient_id.encode())
            monitor = pickle.loads(blob) if blob else PatientMonitor(patient_id, registry.context_for(patient_id))
            cache[patient_id] = monitor
        return monitor

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(app: Any, revoked: Any, **kwargs: Any) -> None:
        cache.clear()

    @app.on_partitions_assigned.connect
    async def forget_on_assign(app: Any, assigned: Any, **kwargs: Any) -> None:
        cache.clear()

    failures: dict[str, Any] = {"batches": 0, "last_error": None}
    timings = BatchTimings()

    @app.agent(readings_topic)
    async def score(stream: Any) -> None:
        async for values in stream.take(BATCH_MAX, within=BATCH_WITHIN_S):
            await process_until_done(values)

    async def process_until_done(values: list[bytes]) -> None:
        """Process a batch, retrying until it succeeds: never let an error leave the loop.

        Faust's `take()` acks a batch's events in a `finally` when its generator closes, and an
        agent that raises closes it: the supervisor restarts the agent, the next commit moves past
        the batch, and every reading in it is gone (faust-streaming#527, robinhood/faust#604).
        So a failed batch is retried in place, from the state in the table (what was true before
        the batch); its events stay unacked, and a rebalance or a kill replays them instead."""
        delay = 0.2
        while True:
            try:
                await process_batch(values)
                failures["last_error"] = None
                return
            except asyncio.CancelledError:
                cache.clear()  # the worker is stopping; the in-memory state may be ahead of the table
                raise
            except Exception as exc:
                cache.clear()  # the in-memory state may be ahead of the table: re-read it
                failures["batches"] += 1
                failures["last_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.error("batch failed; retrying it, nothing acknowledged",
                          extra={"records": len(values), "retry_in_s": delay, "error": failures["last_error"]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def process_batch(values: list[bytes]) -> None:
        """One batch, in an order that keeps every guarantee and puts alerts first.

        Nothing here is acknowledged until the whole batch is done (the offset is committed
        after this returns), so the order of the writes only matters for what a crash leaves
        half done, and for how soon an alert is out:
        1. alert records go to `vigil.alerts` first: they are what a clinician waits for;
        2. series (InfluxDB), scores and dead letters follow, while the alerts are delivered;
        3. alert rows go to PostgreSQL only once the alert records are acknowledged by Kafka.
           A row there means 'announced': a replayed batch skips known alert ids, so a row
           must never exist for an alert that never reached the topic;
        4. patient state goes to the table (changelog) last, after everything it implies is
           stored: a state restored after a crash is never ahead of InfluxDB or PostgreSQL.
        """
        clock = time.perf_counter
        t0 = clock()
        records = [ReadingsRecord.model_validate_json(value) for value in values]
        per_patient = Counter(record.patient_id for record in records for _ in record.readings)
        patients = set(per_patient)
        # The pipeline borrows each patient's state for this batch.
        pipeline.monitors = {patient_id: load(patient_id) for patient_id in patients}
        announced.clear()
        pipeline.process_readings(
            [(record.to_readings(), Message(record.topic, b"", record.received_at)) for record in records])
        batch = sink.pending
        t_core = clock()
        alert_deliveries = []
        for event in announced:
            record = AlertRecord(event=event.event, alert=event.alert.as_dict(), t=event.t,
                                 patient_message=event.patient_message, clinician_summary=event.clinician_summary)
            alert_deliveries.append(await alerts_topic.send(key=event.alert.patient_id.encode(),
                                                            value=record.model_dump_json().encode()))
        t_alerts_sent = clock()
        if announced:
            oldest = min(record.received_at for record in records)
            timings.alert_sent(time.time() - oldest)
        deliveries = []
        latest_models = stage.latest if stage is not None else {}
        for patient_id in patients:
            monitor = pipeline.monitors[patient_id]
            news2 = monitor.last_news2
            model = latest_models.get(patient_id)
            score_record = ScoreRecord(patient_id=patient_id, t=monitor.last_seen_t or 0.0,
                                       news2=news2.score if news2 else None,
                                       news2_partial=news2.partial if news2 else None,
                                       readings=per_patient[patient_id],
                                       anomaly=model.anomaly if model else None, risk=model.risk if model else None,
                                       model_version=model.model_version if model else None)
            deliveries.append(await alerts_topic.send(key=patient_id.encode(), value=score_record.model_dump_json().encode()))
        for row in batch.dead_letters:
            deliveries.append(await deadletter_topic.send(key=(row["device_id"] or "unknown").encode(),
                                                          value=DeadLetterRecord.of_row(row).model_dump_json().encode()))
        await asyncio.gather(influx.write(batch.readings), influx.write_scores(batch.scores), *alert_deliveries)
        t_series = clock()
        if batch.alerts or batch.alert_events:
            rows = WriteBatch(alerts=batch.alerts, alert_events=batch.alert_events)
            await asyncio.get_running_loop().run_in_executor(None, alert_store.write, rows)
        await asyncio.gather(*deliveries)
        t_stored = clock()
        for patient_id, monitor in pipeline.monitors.items():
            states[patient_id.encode()] = pickle.dumps(monitor, protocol=pickle.HIGHEST_PROTOCOL)
        t_end = clock()
        timings.batch(len(records), {"core": t_core - t0, "alerts_sent": t_alerts_sent - t_core,
                                     "series": t_series - t_alerts_sent, "stored": t_stored - t_series,
                                     "state": t_end - t_stored, "total": t_end - t0})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        status = "ok" if influx.healthy and not failures["last_error"] else "degraded"
        return web.json({"status": status, "influx_ok": influx.healthy, "influx_failures": influx.failures,
                         "failed_batches": failures["batches"], "last_error": failures["last_error"],
                         "batches": timings.report(),
                         "readings": pipeline.totals.readings, "rejected": sum(pipeline.totals.rejected.values()),
                         "alerts": len(pipeline.totals.raised),
                         "scoring": "rules+models" if pipeline.model_stage is not None else "rules",
                         "models": models_status})

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain")

    return app


def run_worker(settings: VigilSettings, web_port: int | None = None, loglevel: str = "info") -> None:
    """Start one Faust worker (blocks until stopped)."""
    app = build_app(settings, web_port=web_port)
    sys.argv = ["vigil-processor", "worker", "--loglevel", loglevel, "--web-port", str(web_port or settings.processor_web_port),
                "--web-host", "127.0.0.1"]
    app.main()
