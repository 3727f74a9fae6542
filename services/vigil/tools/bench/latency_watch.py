"""What the scaled latency bench watches while its load runs, each in a thread of its own.

- publish -> alert: raised alerts read back from `vigil.alerts`, traced to the message that
  carried the reading that raised them (and the worker's send time, the record's timestamp);
- publish -> InfluxDB: the last message published, probed until its last reading is there;
- each service's resident memory, every 5 s.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime

from vigil.settings import VigilSettings


class LatencyWatch:
    """Latencies are (publish time, seconds) pairs, so that the bench can leave out the warm-up."""

    def __init__(self, settings: VigilSettings, alerts_topic: str, published: list, carrier: dict[tuple[str, float], int],
                 sent: dict[int, float], rss_kb: Callable[[], dict[str, int]]) -> None:
        self.settings = settings
        self.alerts_topic = alerts_topic
        self.published = published  # the messages, in publish order
        self.carrier = carrier  # (patient, reading time) -> index of the message that carried it
        self.sent = sent  # message index -> publish time, filled in by the publisher as it goes
        self.rss_kb = rss_kb
        self.alert_latencies: list[tuple[float, float]] = []
        self.alert_sent_latencies: list[tuple[float, float]] = []
        self.influx_latencies: list[tuple[float, float]] = []
        self.rss_peak: dict[str, int] = {}
        self.rss_first: dict[str, int] = {}
        self.rss_curve: dict[str, list[tuple[float, int]]] = {}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._watch_alerts, self._probe_influx,
                                                                          self._sample_rss)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, join_s: float = 15) -> None:
        self.stopping.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(join_s)

    def _watch_alerts(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from vigil.shell.streams.kafka_login import kafka_security

        sent, stop = self.sent, self.stopping

        async def consume() -> None:
            # A short long-poll, so the watcher itself adds little (see processor/transport.py).
            consumer = AIOKafkaConsumer(self.alerts_topic, bootstrap_servers=self.settings.kafka_bootstrap,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=50,
                                        **kafka_security(self.settings))
            await consumer.start()
            try:
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=50)
                    now = time.time()
                    for records in batch.values():
                        for record in records:
                            body = json.loads(record.value)
                            if body.get("type") == "alert" and body["event"] == "raised":
                                alert = body["alert"]
                                index = self.carrier.get((alert["patient_id"], round(alert["raised_t"], 3)))
                                if index is not None and index in sent:
                                    self.alert_latencies.append((sent[index], now - sent[index]))
                                    # the worker's send time (the record's Kafka timestamp)
                                    self.alert_sent_latencies.append((sent[index], record.timestamp / 1000 - sent[index]))
            finally:
                await consumer.stop()

        asyncio.run(consume())

    def _probe_influx(self) -> None:
        from influxdb_client import InfluxDBClient

        settings, sent, stop = self.settings, self.sent, self.stopping
        with InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org) as client:
            query = client.query_api()
            probed = -1
            while not stop.is_set():
                if not sent or max(sent) == probed:  # each message probed once: after the
                    time.sleep(0.1)                  # last publish, re-probing it would time
                    continue                         # the idle wait, not the path
                index = probed = max(sent)
                message = self.published[index]
                last = json.loads(message.payload)["samples"][-1]
                t_ns = int(round(datetime.fromisoformat(last["ts"]).timestamp() * 1e9))
                patient = message.device_id.replace("-wr-", "-pt-")
                flux = (f'from(bucket: "{settings.influx_bucket}") |> range(start: time(v: {t_ns}), stop: time(v: {t_ns + 1})) '
                        f'|> filter(fn: (r) => r.patient_id == "{patient}" and r._field == "seq")')
                deadline = time.time() + 10
                while time.time() < deadline and not stop.is_set():
                    if any(t.records for t in query.query(flux)):
                        self.influx_latencies.append((sent[index], time.time() - sent[index]))
                        break
                    time.sleep(0.01)
                time.sleep(0.5)

    def _sample_rss(self) -> None:
        while not self.stopping.is_set():
            for name, kb in self.rss_kb().items():
                self.rss_curve.setdefault(name, []).append((time.time(), kb))
                self.rss_first.setdefault(name, kb)
                self.rss_peak[name] = max(self.rss_peak.get(name, 0), kb)
            self.stopping.wait(5)
