"""The Faust worker's classes, with fakes for Kafka, InfluxDB, PostgreSQL and the table."""

from __future__ import annotations

import asyncio
import json
import pickle
import time

from vigil.core.quality import DEFAULT_QUALITY
from vigil.core.reading import Reading
from vigil.runtimes.processor.deciding import BatchDecider, Decided
from vigil.runtimes.processor.health import Failures, health_report
from vigil.runtimes.processor.lag_sensor import LagSensor
from vigil.runtimes.processor.patient_cache import TablePatientStates
from vigil.runtimes.processor.silence import SilenceWatch, partition_of
from vigil.runtimes.processor.storing import DecidedStore
from vigil.runtimes.processor.timings import BatchTimings
from vigil.runtimes.processor.worker import Worker
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.in_order import Backoff, InOrderStore
from vigil.shell.pipeline.patients import monitor_factory
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Pipeline
from vigil.shell.registry import Registry
from vigil.shell.streams.records import ReadingsRecord

NOW = time.time()


def sick(patient_id: str, count: int = 20, ago: float = 300.0) -> list[Reading]:
    return [Reading(patient_id, patient_id.replace("pt", "wr"), NOW - ago + 15 * k, k + 1, hr=135.0, spo2=86.0, rr=28.0,
                    temp=39.5, sbp=85.0, dbp=50.0, accel=0.02, contact=True) for k in range(count)]


class FakeMessage:
    def __init__(self, timestamp: float) -> None:
        self.timestamp = timestamp
        self.refs = 1  # Faust's own

    def incref(self) -> None:
        self.refs += 1


class FakeEvent:
    """A Faust event: its value, its message's references, its acknowledgement."""

    def __init__(self, readings: list[Reading], log: list, received_at: float = NOW) -> None:
        self.value = ReadingsRecord.of(readings, f"vigil/v1/devices/{readings[0].device_id}/vitals",
                                       received_at).to_json()
        self.message = FakeMessage(NOW - 0.5)
        self.log = log

    def ack(self) -> None:
        self.message.refs -= 1
        self.log.append(("ack", None))


class FakeTopic:
    """A Kafka topic: `send` hands the record over and returns its delivery, which Kafka resolves."""

    def __init__(self, name: str, log: list, *, acked: bool = True) -> None:
        self.name, self.log, self.acked = name, log, acked
        self.deliveries: list[asyncio.Future] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future:
        self.log.append(("send", self.name))
        delivery = asyncio.get_running_loop().create_future()
        if self.acked:
            delivery.set_result(None)
        self.deliveries.append(delivery)
        return delivery


class FakeSeries:
    def __init__(self, log: list, failures: int = 0) -> None:
        self.log, self.failures = log, failures

    async def write(self, rows: list) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("influx down")
        self.log.append(("series", len(rows)))

    async def write_scores(self, rows: list) -> None:
        self.log.append(("scores", len(rows)))


class LoggedTable(dict):
    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append(("state", key))
        super().__setitem__(key, value)


def parts(log: list, *, alerts_acked: bool = True, series_failures: int = 0):
    table = LoggedTable(log)
    patients = TablePatientStates(table, monitor_factory(Registry(), DEFAULT_QUALITY))
    pipeline = Pipeline(Registry(), Metrics(), NOTHING_STORED, patients=patients)
    silence = SilenceWatch(60.0, 4, NOW - 3600)
    timings = BatchTimings()
    alerts, deadletters = FakeTopic("alerts", log, acked=alerts_acked), FakeTopic("deadletter", log)
    decider = BatchDecider(pipeline, patients, silence, alerts, deadletters, timings)
    failures = Failures()
    storer = DecidedStore(alerts, FakeSeries(log, series_failures), lambda rows: log.append(("alert rows", len(rows.alerts))),
                          patients, timings, failures)
    return table, patients, pipeline, silence, timings, alerts, decider, storer, failures


def test_patient_cache_reads_the_table_once_and_forgets_on_rebalance():
    table: dict[bytes, bytes] = {}
    patients = TablePatientStates(table, monitor_factory(Registry(), DEFAULT_QUALITY))
    monitor = patients.get("pt-1")
    for reading in sick("pt-1", 3):
        monitor.observe(reading)
    patients.save(patients.snapshot({"pt-1": monitor}))
    assert patients.get("pt-1") is monitor and patients.patient_keys() == {b"pt-1"}
    patients.forget()
    assert patients.forgotten
    restored = patients.get("pt-1")
    assert restored is not monitor and restored.last_seen_t == monitor.last_seen_t
    patients.get("pt-2")
    assert patients.patient_keys() == {b"pt-1", b"pt-2"} and len(list(patients.in_memory())) == 2


def test_a_decided_batch_sends_alert_records_at_once_and_snapshots_state_at_decision_time():
    async def run() -> None:
        log: list = []
        _, patients, _, silence, _, alerts, decider, _, _ = parts(log)
        events = [FakeEvent(sick("pt-1"), log)]
        decided = await decider.decide(events)
        sent = [json.loads(value) for _, value in decided.alerts]
        assert sent and all(record["event"] == "raised" for record in sent)
        assert log == [("send", "alerts")] * len(sent), "only the alert records go out while deciding"
        assert len(decided.deliveries) == len(sent)
        [(topic, key, value)] = decided.others  # the score record, sent later
        assert topic is alerts and key == b"pt-1" and json.loads(value)["readings"] == 20
        assert [key for key, _ in decided.snapshot] == [b"pt-1"]
        state_then = pickle.loads(decided.snapshot[0][1]).last_seen_t
        patients.get("pt-1").observe(sick("pt-1", 21)[-1])  # the next batch moves the monitor on
        assert pickle.loads(decided.snapshot[0][1]).last_seen_t == state_then
        assert silence.arrived.keys() == {"pt-1"} and set(decided.stages) == {"core", "encode"}

    asyncio.run(run())


def test_stored_in_order_alert_rows_only_after_kafka_acked_and_state_last_then_ack():
    async def run() -> None:
        log: list = []
        table, _, _, _, timings, alerts, decider, storer, _ = parts(log, alerts_acked=False)
        events = [FakeEvent(sick("pt-1"), log)]
        events[0].message.incref()  # as the worker does: held until the batch is stored
        decided = await decider.decide(events)
        log.clear()
        storing = asyncio.create_task(storer.store(decided))
        await asyncio.sleep(0.01)
        assert ("series", 20) in log and not any(entry[0] == "alert rows" for entry in log), \
            "no alert row before Kafka acknowledged the alert records"
        for delivery in alerts.deliveries:
            delivery.set_result(None)
        await storing
        assert not any(entry[0] == "ack" for entry in log)
        storer.acknowledge(decided)
        order = [entry[0] for entry in log]
        assert order.index("alert rows") < order.index("send") < order.index("state") < order.index("ack")
        assert order[-2:] == ["state", "ack"] and b"pt-1" in table
        assert events[0].message.refs == 1 and timings.count == 1
        assert set(timings.slowest[0][2]) == {"core", "encode", "series", "stored", "state", "total"}

    asyncio.run(run())


def test_a_failed_store_is_retried_in_place_and_reported_until_stored():
    async def run() -> None:
        log: list = []
        _, _, _, _, _, alerts, decider, storer, failures = parts(log, series_failures=2)
        while_waiting: list[tuple[float, str | None]] = []

        async def sleep(seconds: float) -> None:
            while_waiting.append((seconds, failures.last_error))

        stores: InOrderStore[Decided] = InOrderStore(storer.store, storer.acknowledge, storer.failed,
                                                     max_in_flight=4, retry=Backoff(), sleep=sleep)
        decided = await decider.decide([FakeEvent(sick("pt-1"), log)])
        sent = len(decided.alerts)
        await stores.submit(decided)
        await stores.settled()
        assert while_waiting == [(0.2, "ConnectionError: influx down"), (0.4, "ConnectionError: influx down")]
        assert failures.batches == 2 and failures.last_error is None
        assert len(alerts.deliveries) == 3 * sent + 1, "a retry sends the alert records again (+1: the score)"
        assert [entry[0] for entry in log].count("ack") == 1

    asyncio.run(run())


def test_worker_retries_a_failed_decision_in_place_after_rereading_state():
    async def run() -> None:
        log: list = []
        _, patients, _, silence, timings, _, decider, storer, failures = parts(log)
        stores: InOrderStore[Decided] = InOrderStore(storer.store, storer.acknowledge, lambda *a: None, max_in_flight=4)
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        class Flaky(BatchDecider):
            """Fails its first decision, as a bad moment of the store behind `known_alerts` would."""

            attempts = 0

            async def decide(self, events):  # noqa: ANN001, ANN202
                self.attempts += 1
                if self.attempts == 1:
                    raise ValueError("bad batch")
                return await super().decide(events)

        decider = Flaky(decider.pipeline, patients, silence, decider.alerts, decider.deadletters, timings)
        worker = Worker(decider, stores, patients, silence, failures, timings, sleep=sleep)
        patients.get("pt-9")
        events = [FakeEvent(sick("pt-1"), log)]
        await worker.take(events)
        await stores.settled()
        assert sleeps == [0.2] and failures.batches == 1 and patients.patient_keys() >= {b"pt-1"}
        assert "pt-9" not in {m.patient_id for m in patients.in_memory()}, "the cache was forgotten"
        assert events[0].message.refs == 1 and ("ack", None) in log
        assert timings.kafka_to_taken and timings.slot_wait

    asyncio.run(run())


def test_silence_watch_counts_from_the_last_reading_or_the_assignment_and_only_mine():
    watch = SilenceWatch(60.0, 4, NOW - 1000)
    keys = [f"pt-{i}".encode() for i in range(12)]
    every = [0, 1, 2, 3]
    mine = {partition_of(keys[0], every, every)}
    watch.heard(["pt-0"], NOW - 30)
    ours = [key.decode() for key in keys if partition_of(key, every, every) in mine]
    assert set(watch.silent(keys, mine, NOW)) == set(ours) - {"pt-0"}
    watch.assigned(NOW - 10)  # a rebalance: nobody is silent before it
    assert watch.silent(keys, mine, NOW) == []
    assert set(watch.silent(keys, {0, 1, 2, 3}, NOW + 120)) == {key.decode() for key in keys}


def test_silence_check_raises_device_offline_through_the_same_path():
    async def run() -> None:
        log: list = []
        table, patients, pipeline, silence, timings, _, decider, storer, failures = parts(log)
        stores: InOrderStore[Decided] = InOrderStore(storer.store, storer.acknowledge, lambda *a: None, max_in_flight=4)
        worker = Worker(decider, stores, patients, silence, failures, timings)
        # The gateway received it an hour ago (coverage: silence is on the older of the receipt
        # time and the device's), and it reached this worker an hour ago.
        await worker.take([FakeEvent(sick("pt-1", ago=7200), log, received_at=NOW - 3600)])
        await stores.settled()
        silence.arrived["pt-1"] = NOW - 3600  # heard from an hour ago
        assert await worker.check_silence(lambda: set(), 5.0) is None  # no partitions: nothing to do
        log.clear()
        await worker.check_silence(lambda: {0, 1, 2, 3}, 5.0)
        await stores.settled()
        order = [entry[0] for entry in log]
        assert order[0] == "send" and order[-1] == "state" and "alert rows" in order, order
        assert sum(1 for entry in log if entry == ("send", "alerts")) == 1  # device_offline, and no score
        log.clear()
        await worker.check_silence(lambda: {0, 1, 2, 3}, 5.0)  # already raised: nothing changes
        await stores.settled()
        assert log == []

    asyncio.run(run())


def test_health_report_says_degraded_while_a_batch_is_failing():
    class Influx:
        healthy, failures = True, 0

    failures = Failures()
    pipeline = Pipeline(Registry(), Metrics(), NOTHING_STORED)
    report = health_report(Influx(), failures, BatchTimings(), LagSensor("vigil.readings"), pipeline,
                           {"enabled": False, "loaded": False})
    assert report["status"] == "ok" and report["scoring"] == "rules" and report["failed_batches"] == 0
    assert set(report) == {"status", "influx_ok", "influx_failures", "failed_batches", "last_error", "batches",
                           "readings", "rejected", "alerts", "scoring", "models"}
    failures.failed("batch storing", RuntimeError("postgres down"), 3, 0.2)
    report = health_report(Influx(), failures, BatchTimings(), LagSensor("vigil.readings"), pipeline, {})
    assert report["status"] == "degraded" and report["last_error"] == "RuntimeError: postgres down"
    failures.stored()
    assert health_report(Influx(), failures, BatchTimings(), LagSensor("vigil.readings"), pipeline, {})["status"] == "ok"
    Influx.healthy = False  # InfluxDB failing: degraded, never down (a worker that answers is running)
    assert health_report(Influx(), failures, BatchTimings(), LagSensor("vigil.readings"), pipeline, {})["status"] == "degraded"


def test_ward_trends_are_stored_before_the_ack_and_a_redelivered_batch_counts_once(tmp_path):
    """With `ward_trends`, the batch's readings go to the SQL store in the alert rows' step (before
    the ack), keeping vital_latest and vital_rollups; the same events decided and stored again by a
    worker that never saw them (a crash after the SQL write, before the state and the commit)
    leave the rollups as they were."""
    from sqlalchemy import text

    from vigil.shell.stores.sql import SqlStore
    from vigil.shell.trends.sql_trends import SqlTrends

    async def run() -> None:
        log: list = []
        store = SqlStore(f"sqlite:///{tmp_path}/vigil.sqlite")

        def write(rows) -> None:
            log.append(("sql", len(rows.readings)))
            store.write(rows)

        readings = sick("pt-1")
        for attempt in range(2):  # the second: the same events redelivered to a fresh worker
            _, _, _, _, timings, alerts, decider, _, failures = parts(log)
            storer = DecidedStore(alerts, FakeSeries(log), write, decider.patients, timings, failures, ward_trends=True)
            events = [FakeEvent(readings, log)]
            decided = await decider.decide(events)
            await storer.store(decided)
            assert ("sql", 20) in log and not any(entry[0] == "ack" for entry in log[log.index(("sql", 20)):])
            storer.acknowledge(decided)
            log.clear()
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT sum(hr_n), sum(readings_n) FROM vital_rollups")).one() == (20, 20)
        latest = SqlTrends(store.engine).latest(["pt-1"])["pt-1"]
        assert latest.vitals["hr"].t == readings[-1].t and latest.vitals["spo2"].value == 86.0
        store.close()

    asyncio.run(run())
