"""`vigil bench ingest`: the embedded pipeline against a bare MQTT subscriber, same run, same bytes.

1. An embedded broker (amqtt) starts in this process, as in `vigil demo`.
2. Baseline: a paho publisher sends N QoS 1 messages to a bare paho subscriber (QoS 1) that
   only counts them: the broker's own ceiling here.
3. Pipeline: the same N messages go to the embedded runtime (validate, score, store in SQLite).
4. Latency: the same messages again to a fresh runtime, paced at half the pipeline's maximum,
   measuring publish -> alert for every alert raised.
Ratios, not absolute numbers, are the result: this machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from vigil.contract.topics import VITALS_TOPIC_FILTER
from vigil.embedded.broker import start_broker
from vigil.embedded.pipeline import AnnouncedAlert
from vigil.embedded.runtime import EmbeddedRuntime
from vigil.registry import Registry, Roster
from vigil.settings import VigilSettings
from vigil.simulators.cohort import plan_cohort
from vigil.simulators.fleet import Fleet
from vigil.simulators.publisher import connect


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _payloads(messages: int, batch_size: int, patients: int, seed: int) -> tuple[list[tuple[str, bytes]], Roster]:
    rate = 1 / 15
    sim_s = messages * batch_size / patients / rate * 1.05
    start = time.time() - sim_s - 60
    plan = plan_cohort(patients, seed, start, sim_s)
    out = [(m.topic, m.payload) for m in Fleet(plan, rate, batch_size).batches_until(start + sim_s) if m.topic.endswith("/vitals")]
    return out[:messages], Roster.model_validate(plan.roster())


def _publish(url: str, payloads: list[tuple[str, bytes]], pace_per_s: float | None = None,
             sent_at: dict[bytes, float] | None = None) -> float:
    client = connect(url, f"bench-pub-{time.time_ns()}")
    started = time.time()
    info = None
    for i, (topic, payload) in enumerate(payloads):
        if pace_per_s:
            wait = started + i / pace_per_s - time.time()
            if wait > 0:
                time.sleep(wait)
        if sent_at is not None:
            sent_at[payload] = time.time()
        info = client.publish(topic, payload, qos=1)
    if info is not None:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    return started


def _bare_subscriber(url_port: int, payloads: list[tuple[str, bytes]]) -> float:
    done = threading.Event()
    count = 0
    first = [0.0]

    def on_message(client, userdata, msg):
        nonlocal count
        count += 1
        if count == len(payloads):
            first.append(time.time())
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", url_port)
    sub.subscribe(VITALS_TOPIC_FILTER, qos=1)
    sub.loop_start()
    time.sleep(0.5)
    started = _publish(f"mqtt://127.0.0.1:{url_port}", payloads)
    done.wait(300)
    sub.disconnect()
    sub.loop_stop()
    return len(payloads) / (first[-1] - started)


async def _pipeline_run(port: int, roster: Roster, payloads, pace: float | None, data_dir: Path):
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []

    def announce(a: AnnouncedAlert) -> None:
        if a.event == "raised" and a.source is not None and a.source.payload in sent_at:
            latencies.append(time.time() - sent_at[a.source.payload])

    # amqtt delivers QoS 1 to a subscriber one message at a time, so PUBACK-after-store would
    # serialise delivery with SQLite commits; an in-memory broker gains nothing from it anyway.
    settings = VigilSettings(data_dir=data_dir, mqtt_port=port, http_port=_free_port(), mqtt_ack_after_store=False)
    runtime = EmbeddedRuntime(settings, Registry(roster), announce=announce, batch_max=500)
    await runtime.start()
    loop = asyncio.get_running_loop()
    publisher = loop.run_in_executor(None, _publish, runtime.mqtt_url, payloads, pace, sent_at)
    started = await publisher
    expected = len(payloads)
    deadline = time.time() + 600
    while runtime.pipeline.totals.payloads < expected and time.time() < deadline:
        await asyncio.sleep(0.01)

    finished = time.time()
    totals = runtime.pipeline.totals
    await runtime.stop()
    return {"msgs_per_s": expected / (finished - started), "readings_per_s": totals.readings / (finished - started),
            "readings": totals.readings, "alerts": len(totals.raised), "latencies": latencies}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 4)


def bench_ingest(messages: int = 20_000, batch_size: int = 10, patients: int = 200, seed: int = 11) -> dict[str, object]:
    payloads, roster = _payloads(messages, batch_size, patients, seed)

    async def bare_run() -> float:
        # The broker runs in this process's event loop, exactly as in the embedded runtime.
        port = _free_port()
        broker = await start_broker("127.0.0.1", port)
        try:
            return await asyncio.get_running_loop().run_in_executor(None, _bare_subscriber, port, payloads)
        finally:
            await broker.shutdown()

    bare = asyncio.run(bare_run())
    with tempfile.TemporaryDirectory() as tmp:
        full = asyncio.run(_pipeline_run(_free_port(), roster, payloads, None, Path(tmp) / "max"))
        half = asyncio.run(_pipeline_run(_free_port(), roster, payloads[: max(1000, len(payloads) // 2)],
                                         full["msgs_per_s"] / 2, Path(tmp) / "half"))
    return {
        "bench": "ingest",
        "messages": len(payloads),
        "samples_per_message": batch_size,
        "bare_broker_msgs_per_s": round(bare),
        "pipeline_msgs_per_s": round(full["msgs_per_s"]),
        "pipeline_readings_per_s": round(full["readings_per_s"]),
        "ratio_to_bare_broker": round(full["msgs_per_s"] / bare, 3),
        "half_load_msgs_per_s": round(full["msgs_per_s"] / 2),
        "alerts_at_half_load": half["alerts"],
        "publish_to_alert_p50_s": _pct(half["latencies"], 0.5),
        "publish_to_alert_p99_s": _pct(half["latencies"], 0.99),
    }
