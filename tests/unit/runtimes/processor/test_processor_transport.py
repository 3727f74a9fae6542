"""The processor's Kafka consumer long-polls for the configured time, not Faust's 1,500 ms."""

from __future__ import annotations

import asyncio
import ssl

from vigil.runtimes.processor.app import build_app
from vigil.settings import VigilSettings

LOGIN = {"kafka_username": "vigil-processor", "kafka_password": "not-a-real-password"}


def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path):
    async def fetch_wait() -> int:
        settings = VigilSettings(kafka_bootstrap="127.0.0.1:1", kafka_fetch_max_wait_ms=123, **LOGIN,
                                 database_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}", processor_data_dir=tmp_path / "w")
        app = build_app(settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # built, not started: no network
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_wait()) == 123


def test_the_worker_logs_in_as_its_own_user_over_tls(tmp_path):
    """Faust's consumer (and so its producer and topic admin: one broker_credentials) speaks
    SASL_SSL with SCRAM-SHA-512 as the processor's user, checking the brokers' certificates."""
    async def security() -> tuple:
        settings = VigilSettings(kafka_bootstrap="127.0.0.1:1", database_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}",
                                 processor_data_dir=tmp_path / "w", **LOGIN)
        app = build_app(settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # built, not started: no network
        try:
            client = consumer._client
            return (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username,
                    client._ssl_context.verify_mode, client._ssl_context.check_hostname)
        finally:
            await consumer.stop()

    assert asyncio.run(security()) == ("SASL_SSL", "SCRAM-SHA-512", "vigil-processor", ssl.CERT_REQUIRED, True)


def commit_offset(tmp_path, committed: int, acked: list[int], gaps: list[tuple[int, int]] = ()) -> int | None:
    """What the worker's own consumer would commit for one partition (Faust's bookkeeping, set by hand)."""
    from faust.types import TP

    async def new_offset() -> int | None:
        settings = VigilSettings(kafka_bootstrap="127.0.0.1:1", database_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}", **LOGIN,
                                 processor_data_dir=tmp_path / "w")
        consumer = build_app(settings).consumer
        tp = TP("vigil.readings", 0)
        consumer._committed_offset[tp] = committed
        consumer._acked[tp] = list(acked)
        consumer._acked_index[tp] = set(acked)
        for begin, end in gaps:
            consumer._gap[tp].addi(begin, end)
        return consumer._new_offset(tp)

    return asyncio.run(new_offset())


def test_attack_a_record_unacknowledged_at_the_committed_offset_is_never_committed_past(tmp_path):
    """Committed offset 261 is the next record to process: with 261 unacknowledged and 262-264
    acknowledged, faust-streaming alone commits 265 (its head check is one short), and after a
    crash record 261 is never read again. A CI run lost exactly such a record."""
    assert commit_offset(tmp_path, 261, [262, 263, 264]) is None


def test_a_run_from_the_committed_offset_is_committed(tmp_path):
    assert commit_offset(tmp_path, 261, [261, 262, 263, 265]) == 264
    assert commit_offset(tmp_path, 0, [1, 2]) is None, "offset 0 is an offset too"


def test_a_record_faust_will_never_deliver_does_not_hold_the_commit_back(tmp_path):
    """A gap (a transaction marker, a compacted offset) at the head counts as acknowledged."""
    assert commit_offset(tmp_path, 261, [263, 264], gaps=[(261, 263)]) == 265


def delivered_after_a_seek(tmp_path, committed: int, fetches: list[list[int]], end: int,
                           empty_queues_after: int | None = None) -> tuple[list[int], list[dict]]:
    """Faust's own drain loop (`Consumer._drain_messages`) over the worker's consumer, after a seek
    to `committed`; the fetcher returns the `fetches` given (records fetched before the seek, as
    an in-flight fetch delivers them), then the log from its position up to `end`; Faust empties
    the agents' queues once `empty_queues_after` is delivered. What the agent's side receives,
    and the seeks the consumer asked for."""
    from types import SimpleNamespace

    from aiokafka.structs import ConsumerRecord
    from faust.types import TP

    tp = TP("vigil.readings", 2)

    def record(offset: int) -> ConsumerRecord:
        return ConsumerRecord(tp.topic, tp.partition, offset, 1_700_000_000_000, 0, b"k", b"v", None, 1, 1, ())

    async def run() -> tuple[list[int], list[dict]]:
        settings = VigilSettings(kafka_bootstrap="127.0.0.1:1", database_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}", **LOGIN,
                                 processor_data_dir=tmp_path / "w")
        consumer = build_app(settings).consumer
        thread = consumer._thread
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        log = {"position": committed}
        scripted = [list(batch) for batch in fetches]
        seeks: list[dict] = []
        received: list[int] = []

        async def seek_to_committed():
            log["position"] = committed
            return {tp: committed}

        async def seek_wait(partitions):
            seeks.append(dict(partitions))
            log["position"] = partitions[tp]

        async def getmany(active_partitions, timeout):
            if scripted:
                return {tp: [record(offset) for offset in scripted.pop(0)]}
            if log["position"] >= end:
                fetcher._stopped.set()
                return {}
            batch = list(range(log["position"], end))
            log["position"] = end
            return {tp: [record(offset) for offset in batch]}

        async def callback(message):
            received.append(message.offset)
            if message.offset == empty_queues_after and received.count(message.offset) == 1:
                consumer.app.flow_control.resume()  # as Faust does at the end of a rebalance


        thread.seek_to_committed, thread.seek_wait, thread.getmany = seek_to_committed, seek_wait, getmany
        thread.highwater = lambda tp: end
        consumer._vigil.assigned = frozenset({tp})
        consumer._set_active_tps({tp})
        consumer.callback = callback
        await consumer.perform_seek()
        await consumer._drain_messages(fetcher)
        return received, seeks

    return asyncio.run(run())


def test_attack_records_fetched_before_a_seek_never_make_the_worker_skip_records(tmp_path):
    """Issue 12, as a CI run logged it: committed 135; a batch fetched before the seek to the
    committed offset begins at 160 (an earlier fetch took 135-159 and Faust discarded it). Faust
    alone delivers 160-164, then drops 135-163 of the fresh fetch as already read: 135-159 never
    reach the agent. The worker's consumer fetches again from 135 instead."""
    received, seeks = delivered_after_a_seek(tmp_path, committed=135, fetches=[[160, 161, 162, 163, 164]], end=171)
    assert received == list(range(135, 171))
    assert [{tp.partition: offset for tp, offset in seek.items()} for seek in seeks] == [{2: 135}]


def test_records_fetched_before_a_seek_from_the_committed_offset_are_delivered_once(tmp_path):
    """The common case: the early batch starts at the committed offset; the fresh fetch repeats it."""
    received, seeks = delivered_after_a_seek(tmp_path, committed=135, fetches=[[135, 136, 137]], end=140)
    assert received == list(range(135, 140))
    assert seeks == []


def test_attack_records_in_the_agents_queue_when_faust_empties_it_are_fetched_again(tmp_path):
    """At the end of a rebalance Faust seeks to the committed offset, then resumes the flow,
    which empties the agents' queues: records delivered in between were never taken. Faust
    alone goes on after them; the worker's consumer fetches again from the committed offset."""
    received, seeks = delivered_after_a_seek(tmp_path, committed=117, fetches=[], end=126, empty_queues_after=120)
    assert received == [117, 118, 119, 120, *range(117, 126)]
    assert [{tp.partition: offset for tp, offset in seek.items()} for seek in seeks] == [{2: 117}]
