"""`vigil processor worker`: the Faust app. Agents are a few lines; the work is in the core.

Per-patient state is a PatientMonitor, pickled into a Faust table whose changelog topic is
co-partitioned with `vigil.readings` (same key bytes, same partitioner): a worker that restarts,
or takes over a partition in a rebalance, recovers each patient's state from the changelog.
Each batch (`stream.take_events`) goes through the same Pipeline as the embedded mode; its alert
records go to `vigil.alerts` at once, then, while later batches are scored, readings go to
InfluxDB, alert rows to PostgreSQL (one row per alert id: a replayed batch never announces an
alert twice), scores to `vigil.alerts`, refusals to `vigil.deadletter`, and the state to the
table. A batch's offsets are committed only after all of that: delivery is at least once, and
every write is idempotent, so a replay after a crash changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner

from vigil.shell.streams.records import AlertRecord, AlertSnapshot, DeadLetterRecord, ReadingsRecord, ScoreRecord
from vigil.core.patient import PatientMonitor
from vigil.core.quality import QualityLimits
from vigil.shell.pipeline.pipeline import AnnouncedAlert, Message, Pipeline
from vigil.shell.observability.metrics import Metrics
from vigil.shell.stores.influx import InfluxSeriesWriter
from vigil.runtimes.processor.lag_sensor import LagSensor
from vigil.runtimes.processor.timings import BatchTimings
from vigil.runtimes.processor.transport import transport_with_fetch_wait
from vigil.shell.registry import Registry, load_roster
from vigil.shell.scoring.loading import model_stage_for
from vigil.settings import VigilSettings
from vigil.shell.stores.sql import SqlStore, WriteBatch

log = logging.getLogger("vigil.processor")
BATCH_MAX = 2000
COMMIT_EVERY_NEVER = 2**62
STORES_IN_FLIGHT = 4  # decided batches waiting to be stored, at most
BATCH_WITHIN_S = 0.1  # the longest a record waits for its batch to fill; at half load batches never fill
partition_of = DefaultPartitioner()  # the gateway's producer's: a patient's readings partition


class CollectingSink:
    """Lets the shared Pipeline decide; the agent then writes asynchronously to each sink."""

    def __init__(self, alert_store: SqlStore) -> None:
        self.alert_store = alert_store
        self.pending = WriteBatch()

    def write(self, batch: WriteBatch) -> None:
        self.pending = batch

    def known_alerts(self, alert_ids: list[str]) -> set[str]:
        return self.alert_store.known_alerts(alert_ids)


@dataclass(slots=True)
class Decided:
    """A scored batch waiting to be stored: its events stay unacknowledged until it is."""

    events: list[Any]
    batch: WriteBatch
    alerts: list[tuple[bytes, bytes]]
    deliveries: list[Any]
    others: list[tuple[Any, bytes, bytes]]
    snapshot: list[tuple[bytes, bytes]]
    started: float
    stages: dict[str, float]
    retry: bool = False


class ProcessorApp(faust.App):
    """A Faust app whose Kafka consumer long-polls for at most `fetch_max_wait_ms`."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return transport_with_fetch_wait(self.fetch_max_wait_ms)(self.conf.broker_consumer, self)


def build_app(settings: VigilSettings, *, web_port: int | None = None) -> faust.App:
    brokers = [f"kafka://{hostport.strip()}" for hostport in settings.kafka_bootstrap.split(",")]
    app = ProcessorApp(
        settings.processor_app_id,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        broker=brokers,
        store="memory://",
        datadir=str(settings.processor_data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_host="127.0.0.1",
        web_port=web_port or settings.processor_web_port,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # Offsets are committed once a second, and only then: a count-based commit runs inside
        # Faust's fetch loop (flush the producer, then commit), and stopped fetching for up to 0.6 s.
        broker_commit_every=COMMIT_EVERY_NEVER,
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
    pipeline = Pipeline(registry, sink, metrics, announce=announced.append,
                        quality=QualityLimits(stale_after_s=settings.device_silent_after_s))
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
            monitor = pickle.loads(blob) if blob else pipeline.new_monitor(patient_id)
            cache[patient_id] = monitor
        return monitor

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(app: Any, revoked: Any, **kwargs: Any) -> None:
        cache.clear()

    @app.on_partitions_assigned.connect
    async def forget_on_assign(app: Any, assigned: Any, **kwargs: Any) -> None:
        cache.clear()
        arrivals["assigned_at"] = time.time()

    # When each patient's readings last reached this worker (wall clock). A device is silent
    # when nothing has arrived for it for its stale time, counted at the earliest from when this
    # worker took its partition: a backlog being replayed, or a restart, is not silence.
    arrivals: dict[str, Any] = {"assigned_at": time.time(), "patients": {}}

    failures: dict[str, Any] = {"batches": 0, "last_error": None}
    timings = BatchTimings()
    lag = LagSensor(settings.readings_topic)
    app.sensors.add(lag)

    def failed(what: str, exc: Exception, records: int, delay: float) -> None:
        failures["batches"] += 1
        failures["last_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error(f"{what} failed; retrying, nothing acknowledged",
                  extra={"records": records, "retry_in_s": delay, "error": failures["last_error"]})

    # Batches are scored one at a time (the agent and the silence check share the monitors), and
    # stored in the order they were scored: each store awaits the one before it.
    deciding = asyncio.Lock()
    chain: dict[str, Any] = {"last": None, "in_flight": deque()}

    async def state_settled() -> None:
        """After the cache was dropped (rebalance, failure) state comes from the table, so every
        batch still being stored must be in it first."""
        if chain["last"] is not None and not cache:
            await chain["last"]

    async def queue_store(decided: Decided) -> None:
        in_flight: deque[asyncio.Task] = chain["in_flight"]
        while len(in_flight) >= STORES_IN_FLIGHT:  # bounded: memory never grows without limit
            await in_flight.popleft()
        chain["last"] = asyncio.create_task(store_after(chain["last"], decided))
        in_flight.append(chain["last"])

    @app.agent(readings_topic)
    async def score(stream: Any) -> None:
        """Batches are decided back to back while the ones before them are stored.

        A batch's events are acknowledged only once everything it caused is stored: `take_events`
        acks a batch when the loop body returns (and also when an agent raises and its generator
        is closed: faust-streaming#527, robinhood/faust#604, where a crashed batch is lost), so
        each event holds one extra reference until its batch is stored. A failure is retried in
        place and never leaves this loop."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            taken = time.time()
            for event in events:
                event.message.incref()  # released by store(): the offset commits only after that
            async with deciding:
                await state_settled()
                decided = await decide_until_done(events)
                waiting = time.time()
                await queue_store(decided)
            timings.taken(taken - min(event.message.timestamp for event in events), time.time() - waiting)

    if settings.processor_silence_check_s > 0:
        @app.timer(interval=settings.processor_silence_check_s)
        async def check_silent_devices() -> None:
            """Raise `device_offline` for this worker's patients whose wearable has gone quiet.

            Readings drive everything else, so a device that stops sending needs a clock: every
            `processor_silence_check_s` the core's timers run for the patients on this worker's
            partitions. Its alerts take the same path as a batch's (sent, then stored in order);
            their ids come from the last reading's time, so a repeat after a crash is skipped."""
            async with deciding:
                mine = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == readings_topic.get_topic_name()}
                if not mine:
                    return
                await state_settled()
                keys = set(states.keys()) | {patient_id.encode() for patient_id in cache}
                every = list(range(settings.topic_partitions))
                now = time.time()
                quiet_since = now - settings.device_silent_after_s
                floor, arrived = arrivals["assigned_at"], arrivals["patients"]
                patients = [key.decode() for key in keys if max(arrived.get(key.decode(), 0.0), floor) < quiet_since
                            and partition_of(key, every, every) in mine]
                if not patients:
                    return
                try:
                    pipeline.monitors = {patient_id: load(patient_id) for patient_id in patients}
                    announced.clear()
                    batch = pipeline.tick(now)
                    if not batch.alerts:
                        return
                    changed = {row.patient_id for row in batch.alerts}
                    decided = await outcome(batch, {p: pipeline.monitors[p] for p in changed}, time.perf_counter(), [])
                except Exception as exc:
                    failed("silence check", exc, 0, settings.processor_silence_check_s)
                    cache.clear()
                    return
                log.info("devices silent", extra={"patients": sorted(changed)})
                await queue_store(decided)

    async def store_after(previous: asyncio.Task | None, decided: Decided) -> None:
        """Batches are stored, and their state written and acknowledged, in order."""
        if previous is not None:
            await previous
        await store_until_done(decided)

    async def decide_until_done(events: list[Any]) -> Decided:
        delay = 0.2
        while True:
            try:
                return await decide(events)
            except Exception as exc:
                failed("batch scoring", exc, len(events), delay)
                if chain["last"] is not None:
                    await chain["last"]  # the table then holds everything decided before this batch
                cache.clear()  # the in-memory state may be ahead of the table: re-read it
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def store_until_done(decided: Decided) -> None:
        delay = 0.2
        while True:
            try:
                await store(decided)
                failures["last_error"] = None
                return
            except Exception as exc:
                failed("batch storing", exc, len(decided.events), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def decide(events: list[Any]) -> Decided:
        """Score a batch and send its alerts: the critical path, nothing else on it."""
        clock = time.perf_counter
        t0 = clock()
        records = [ReadingsRecord.model_validate_json(event.value) for event in events]
        per_patient = Counter(record.patient_id for record in records for _ in record.readings)
        arrivals["patients"].update(dict.fromkeys(per_patient, time.time()))
        # The pipeline borrows each patient's state for this batch.
        pipeline.monitors = {patient_id: load(patient_id) for patient_id in per_patient}
        announced.clear()
        pipeline.process_readings(
            [(record.to_readings(), Message(record.topic, b"", record.received_at)) for record in records])
        oldest = min(record.received_at for record in records) if records else None
        return await outcome(sink.pending, pipeline.monitors, t0, events, per_patient, oldest)

    async def outcome(batch: WriteBatch, monitors: dict[str, PatientMonitor], t0: float, events: list[Any],
                      per_patient: Counter[str] | None = None, oldest_received: float | None = None) -> Decided:
        """What a decided batch (or silence check) sends at once, and what it leaves to store.
        Scores go out for the patients with readings (`per_patient`); a silence check has none."""
        clock = time.perf_counter
        # Alert records go out first: they are what a clinician waits for.
        alerts = [(event.alert.patient_id.encode(), AlertRecord(
            event=event.event, alert=AlertSnapshot.of(event.alert), t=event.t, patient_message=event.patient_message,
            clinician_summary=event.clinician_summary).model_dump_json().encode()) for event in announced]
        deliveries = [await alerts_topic.send(key=key, value=value) for key, value in alerts]
        t_core = clock()
        if announced and oldest_received is not None:
            timings.alert_sent(time.time() - oldest_received)
        latest_models = stage.latest if stage is not None else {}
        others: list[tuple[Any, bytes, bytes]] = []
        for patient_id, readings in (per_patient or {}).items():
            monitor = monitors[patient_id]
            news2 = monitor.last_news2
            model = latest_models.get(patient_id)
            others.append((alerts_topic, patient_id.encode(), ScoreRecord(
                patient_id=patient_id, t=monitor.last_seen_t or 0.0, news2=news2.score if news2 else None,
                news2_partial=news2.partial if news2 else None, readings=readings,
                anomaly=model.anomaly if model else None, risk=model.risk if model else None,
                model_version=model.model_version if model else None).model_dump_json().encode()))
        for row in batch.dead_letters:
            others.append((deadletter_topic, (row.device_id or "unknown").encode(),
                           DeadLetterRecord.of_row(row).model_dump_json().encode()))
        # State as of this batch, taken now: the next batch moves these monitors on while this
        # one is stored, and the table must never get ahead of what InfluxDB and PostgreSQL hold.
        snapshot = [(patient_id.encode(), pickle.dumps(monitor, protocol=pickle.HIGHEST_PROTOCOL))
                    for patient_id, monitor in monitors.items()]
        t_end = clock()
        return Decided(events, batch, alerts, deliveries, others, snapshot, t0,
                       {"core": t_core - t0, "encode": t_end - t_core})

    async def store(decided: Decided) -> None:
        """Everything a decided batch implies, then its state, then its acknowledgement.

        1. series (InfluxDB, idempotent by measurement, tags and time), while the alert records
           are delivered; 2. alert rows to PostgreSQL only once Kafka has acknowledged the alert
           records: a row there means 'announced', and a replay skips known alert ids, so a row
           must never exist for an alert that never reached the topic; 3. scores and dead letters;
           4. patient state to the table (changelog) last, so a state restored after a crash is
           never ahead of what is stored; 5. the batch's events acknowledged."""
        clock = time.perf_counter
        t0 = clock()
        batch = decided.batch
        if decided.retry:  # a failed attempt's deliveries cannot be awaited again: send again
            decided.deliveries = [await alerts_topic.send(key=key, value=value) for key, value in decided.alerts]
        decided.retry = True
        await asyncio.gather(influx.write(batch.readings), influx.write_scores(batch.scores), *decided.deliveries)
        t_series = clock()
        if batch.alerts or batch.alert_events:
            rows = WriteBatch(alerts=batch.alerts, alert_events=batch.alert_events)
            await asyncio.get_running_loop().run_in_executor(None, alert_store.write, rows)
        for topic, key, value in decided.others:
            # Not awaited: the commit flushes the producer before it moves the offset on.
            await topic.send(key=key, value=value)
        t_stored = clock()
        for key, blob in decided.snapshot:
            states[key] = blob
        for event in decided.events:
            event.ack()
        t_end = clock()
        timings.batch(len(decided.events), {**decided.stages, "series": t_series - t0, "stored": t_stored - t_series,
                                            "state": t_end - t_stored, "total": t_end - decided.started})

    @app.task
    async def watch_loop_lag() -> None:
        """How late the event loop wakes: anything blocking it delays every batch."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.05)
            timings.loop_lag.append(time.perf_counter() - before - 0.05)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        status = "ok" if influx.healthy and not failures["last_error"] else "degraded"
        return web.json({"status": status, "influx_ok": influx.healthy, "influx_failures": influx.failures,
                         "failed_batches": failures["batches"], "last_error": failures["last_error"],
                         "batches": {**timings.report(), **lag.report()},
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
