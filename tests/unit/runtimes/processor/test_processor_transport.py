"""The processor's Kafka consumer long-polls for the configured time, not Faust's 1,500 ms."""

from __future__ import annotations

import asyncio

from vigil.runtimes.processor.app import build_app
from vigil.settings import VigilSettings


def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path):
    async def fetch_wait() -> int:
        settings = VigilSettings(kafka_bootstrap="127.0.0.1:1", kafka_fetch_max_wait_ms=123,
                                 database_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}", processor_data_dir=tmp_path / "w")
        app = build_app(settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # built, not started: no network
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_wait()) == 123
