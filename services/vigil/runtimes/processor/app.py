"""`vigil processor worker`: the Faust app. Agents are a few lines; the work is in plain classes.

Per-patient state is a PatientMonitor, pickled into a Faust table whose changelog topic is
co-partitioned with `vigil.readings` (same key bytes, same partitioner): a worker that restarts,
or takes over a partition in a rebalance, recovers each patient's state from the changelog
(patient_cache.TablePatientStates). Each batch (`stream.take_events`) goes through the same
Pipeline as the embedded mode (deciding.BatchDecider); its alert records go to `vigil.alerts` at
once, then, while later batches are scored, readings go to InfluxDB, alert rows to PostgreSQL
(one row per alert id: a replayed batch never announces an alert twice), scores to
`vigil.alerts`, refusals to `vigil.deadletter`, and the state to the table (storing.DecidedStore,
in order through the shared InOrderStore). A batch's offsets are committed only after all of
that: delivery is at least once, and every write is idempotent, so a replay after a crash
changes nothing. worker.Worker holds the agent's and the silence timer's work.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import faust
from mode.utils.objects import cached_property

from vigil.core.quality import QualityLimits
from vigil.runtimes.processor.deciding import BatchDecider, Decided
from vigil.runtimes.processor.health import Failures, health_report
from vigil.runtimes.processor.lag_sensor import LagSensor
from vigil.runtimes.processor.patient_cache import TablePatientStates
from vigil.runtimes.processor.silence import SilenceWatch
from vigil.runtimes.processor.storing import DecidedStore
from vigil.runtimes.processor.timings import BatchTimings
from vigil.runtimes.processor.transport import transport_with_fetch_wait
from vigil.runtimes.processor.worker_consumer import CountedFlowControl
from vigil.runtimes.processor.worker import Worker
from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.coverage_report import CoverageReport
from vigil.shell.pipeline.in_order import Backoff, InOrderStore
from vigil.shell.pipeline.patients import monitor_factory
from vigil.shell.pipeline.pipeline import Pipeline
from vigil.shell.registry import Registry, load_roster
from vigil.shell.scoring.loading import model_stage_for
from vigil.shell.stores.influx import InfluxSeriesWriter
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.streams.kafka_login import faust_credentials

BATCH_MAX = 2000
COMMIT_EVERY_NEVER = 2**62
STORES_IN_FLIGHT = 4  # decided batches waiting to be stored, at most
BATCH_WITHIN_S = 0.1  # the longest a record waits for its batch to fill; at half load batches never fill


class ProcessorApp(faust.App):
    """A Faust app whose Kafka consumer long-polls for at most `fetch_max_wait_ms`, and whose flow
    control counts how often it empties the agents' queues."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return transport_with_fetch_wait(self.fetch_max_wait_ms)(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> CountedFlowControl:
        """Faust's flow control, counting how often it empties the agents' queues: the worker's
        consumer then fetches again what they held (in_sequence.InSequence.rewound)."""
        return CountedFlowControl(loop=self.loop)


def new_app(settings: VigilSettings, web_port: int | None) -> ProcessorApp:
    """The Faust app, configured: acks from all replicas, offsets committed once a second."""
    return ProcessorApp(
        settings.processor_app_id,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        broker=[f"kafka://{hostport.strip()}" for hostport in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),  # its own user: its topics and group only
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


def assigned_partitions(app: faust.App, topic: str) -> set[int]:
    """The partitions of `topic` this worker holds (as active) right now."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def build_app(settings: VigilSettings, *, web_port: int | None = None) -> faust.App:
    """Wire Faust's topics, table, agents, timers and pages to the worker's classes."""
    app = new_app(settings, web_port)
    readings_topic = app.topic(settings.readings_topic, key_serializer="raw", value_serializer="raw",
                               partitions=settings.topic_partitions)
    alerts_topic = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    deadletter_topic = app.topic(settings.deadletter_topic, key_serializer="raw", value_serializer="raw")
    states = app.Table("patient-state", default=None, key_type=bytes, value_type=bytes,
                       partitions=settings.topic_partitions, use_partitioner=True)

    registry = Registry(load_roster(settings.roster)) if settings.roster else Registry()
    metrics = Metrics()
    alert_store = SqlStore(settings.database_url or settings.sqlite_url())
    quality = QualityLimits(stale_after_s=settings.device_silent_after_s)
    patients = TablePatientStates(states, monitor_factory(registry, quality, settings.coverage_limits()))
    stage, models_status = model_stage_for(settings.models_enabled, settings.model_dir)
    pipeline = Pipeline(registry, metrics, alert_store, patients=patients, model_stage=stage, quality=quality,
                        emergency_number=settings.emergency_number, dead_letters=DeadLetterKeeper.capped_only(settings))
    influx = InfluxSeriesWriter(settings.influx_url, settings.influx_token, settings.influx_org, settings.influx_bucket)
    app.vigil = {"pipeline": pipeline, "influx": influx, "metrics": metrics}  # type: ignore[attr-defined]
    silence = SilenceWatch(settings.device_silent_after_s, settings.topic_partitions, time.time())
    failures = Failures()
    timings = BatchTimings()
    lag = LagSensor(settings.readings_topic)
    app.sensors.add(lag)
    decider = BatchDecider(pipeline, patients, silence, alerts_topic, deadletter_topic, timings)
    storer = DecidedStore(alerts_topic, influx, alert_store.write, patients, timings, failures, settings.ward_trends_sql)
    stores: InOrderStore[Decided] = InOrderStore(storer.store, storer.acknowledge, storer.failed,
                                                 max_in_flight=STORES_IN_FLIGHT, retry=Backoff())
    enrolled = [profile.patient_id.encode() for profile in registry.patients()]
    coverage = CoverageReport(metrics)
    worker = Worker(decider, stores, patients, silence, failures, timings, enrolled=lambda: enrolled, coverage=coverage)

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(app: Any, revoked: Any, **kwargs: Any) -> None:
        patients.forget()
        storer.ack_order.forget()

    @app.on_partitions_assigned.connect
    async def forget_on_assign(app: Any, assigned: Any, **kwargs: Any) -> None:
        patients.forget()
        silence.assigned(time.time())

    @app.agent(readings_topic)
    async def score(stream: Any) -> None:
        """Batches are decided back to back while the ones before them are stored.

        A batch's events are acknowledged only once everything it caused is stored: `take_events`
        acks a batch when the loop body returns (and also when an agent raises and its generator
        is closed: faust-streaming#527, robinhood/faust#604, where a crashed batch is lost), so
        each event holds one extra reference until its batch is stored. A failure is retried in
        place and never leaves this loop."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            await worker.take(events)

    if settings.processor_silence_check_s > 0:
        @app.timer(interval=settings.processor_silence_check_s)
        async def check_silent_devices() -> None:
            """Raise `device_offline` for this worker's patients whose wearable has gone quiet.

            Readings drive everything else, so a device that stops sending needs a clock: every
            `processor_silence_check_s` the core's timers run for the patients on this worker's
            partitions. Its alerts take the same path as a batch's (sent, then stored in order);
            their ids come from the last reading's time, so a repeat after a crash is skipped."""
            await worker.check_silence(lambda: assigned_partitions(app, readings_topic.get_topic_name()),
                                       settings.processor_silence_check_s)

    @app.task
    async def watch_loop_lag() -> None:
        await timings.watch_loop_lag()

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json(health_report(influx, failures, timings, lag, pipeline, models_status, coverage))

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
