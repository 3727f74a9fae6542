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
