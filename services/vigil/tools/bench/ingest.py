"""`vigil bench ingest`: the embedded pipeline against a bare MQTT subscriber, same run, same bytes.

1. Baseline: an embedded broker (amqtt, in this process's event loop, as in `vigil demo`); a paho
   publisher sends N QoS 1 messages to a bare paho subscriber (QoS 1) that only counts them:
   the broker's own ceiling here.
2. Pipeline: a fresh broker of the same kind inside the embedded runtime; the same N messages go
   through it to the runtime (validate, score, store in SQLite), which PUBACKs each message only
   once its batch is durable (VIGIL_MQTT_ACK_AFTER_STORE, the default); the bare broker of step 1
   PUBACKs on receipt. The same publisher in both, with IN_FLIGHT messages at most unacknowledged.
3. Latency: half of the messages again to a fresh runtime, paced at half the pipeline's maximum,
   measuring publish -> alert for every alert raised by a reading.
Each rate runs from the first publish to the last message counted (or processed). Each phase
fails after 30 s without progress instead of hanging. Ratios, not absolute numbers, are the
result: this machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from vigil.shell.contract.topics import VITALS_TOPIC_FILTER
from vigil.shell.mqtt.client import mqtt_client
from vigil.runtimes.embedded.access import BrokerAccess
from vigil.runtimes.embedded.broker import start_broker
from vigil.shell.pipeline.pipeline import AnnouncedAlert
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.shell.registry import Registry, Roster
from vigil.settings import VigilSettings
from vigil.shell.observability.percentile import percentile
from vigil.tools.ports import free_port
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet


# The publisher stands for a ward of 200 devices, each with paho's default window of 20 unacknowledged
# QoS 1 messages. Once PUBACKs wait for the store, the window, not the pipeline, would otherwise set
# the rate (one connection with 1,000 in flight: ~0-20 % slower in A/B runs, docs/benchmarks.md).
IN_FLIGHT = 200 * 20


def _payloads(messages: int, batch_size: int, patients: int, seed: int) -> tuple[list[tuple[str, bytes]], Roster]:
    rate = 1 / 15
    sim_s = messages * batch_size / patients / rate * 1.05
    start = time.time() - sim_s - 60
    plan = plan_cohort(patients, seed, start, sim_s)
    out = [(m.topic, m.payload) for m in Fleet(plan, rate, batch_size).batches_until(start + sim_s) if m.topic.endswith("/vitals")]
    return out[:messages], Roster.model_validate(plan.roster())


def _data_times(payloads: list[tuple[str, bytes]]) -> list[float]:
    """The time of each message's last sample: the ward's clock when a device sent it."""
    return [datetime.fromisoformat(json.loads(p)["samples"][-1]["ts"]).timestamp() for _, p in payloads]


class _Publisher:
    """A paho publisher (the simulator's `connect`) that sends every payload at QoS 1.

    It stays connected until the consumer has everything: a bare amqtt 0.12 broker PUBACKs a
    publish as soon as it is queued in the publisher's session, before routing it, and drops that
    queue when the publisher disconnects, so disconnecting on the last PUBACK can lose the tail of
    the run (the embedded runtime's broker PUBACKs only once stored).
    """

    def __init__(self, url: str, payloads: list[tuple[str, bytes]], pace_per_s: float | None = None,
                 sent_at: dict[bytes, float] | None = None, devices: dict[str, str | None] | None = None) -> None:
        self.url, self.payloads, self.pace_per_s, self.sent_at = url, payloads, pace_per_s, sent_at
        self.consumed = threading.Event()  # set by the consumer when it has counted every message
        self.acked = 0
        # Issue 11: one connection per device (device id -> its password, None: anonymous), each with
        # paho's default window of 20, instead of one connection standing for the whole ward.
        self.devices = devices
        self._counting = threading.Lock()

    def _clients(self, on_publish: Callable[..., None]) -> dict[str | None, mqtt.Client]:
        """Connected publishers: {None: one for every topic}, or one per device (waits for every CONNACK)."""
        wanted: dict[str | None, str | None] = {None: None} if self.devices is None else dict(self.devices)
        clients: dict[str | None, mqtt.Client] = {}
        for device, password in wanted.items():
            client, host, port = mqtt_client(self.url, f"bench-pub-{device or ''}-{time.time_ns()}",
                                             username=device if password else None, password=password)
            client.max_inflight_messages_set(IN_FLIGHT if device is None else IN_FLIGHT // len(wanted))
            client.max_queued_messages_set(0)
            client.on_publish = on_publish
            client.connect(host, port, keepalive=30)
            client.loop_start()
            clients[device] = client
        deadline = time.time() + 60
        while not all(c.is_connected() for c in clients.values()):
            if time.time() > deadline:
                raise TimeoutError("bench ingest: publishers could not connect (refused logins?)")
            time.sleep(0.02)
        return clients

    def run(self, consumed_count: Callable[[], int], stall_s: float = 30.0) -> float:
        """Publish everything and wait for the consumer; return when the first message was sent.

        Raises TimeoutError if neither the broker's PUBACKs nor the consumer progress for `stall_s`.
        """
        all_acked = threading.Event()
        total = len(self.payloads)

        def on_publish(client, userdata, mid, reason, props) -> None:
            with self._counting:
                self.acked += 1
                if self.acked == total:
                    all_acked.set()

        # As the simulator's `connect`, with a ward's window (IN_FLIGHT in all).
        clients = self._clients(on_publish)
        single = clients.get(None)
        pace, sent_at = self.pace_per_s, self.sent_at
        try:
            started = time.time()
            for i, (topic, payload) in enumerate(self.payloads):
                if pace:
                    wait = started + i / pace - time.time()
                    if wait > 0:
                        time.sleep(wait)
                if sent_at is not None:
                    sent_at[payload] = time.time()
                (single or clients[topic.split("/")[3]]).publish(topic, payload, qos=1)
            progress, changed = -1, time.time()
            while not (all_acked.is_set() and self.consumed.is_set()):
                self.consumed.wait(0.2)
                now, current = time.time(), self.acked + consumed_count()
                if current != progress:
                    progress, changed = current, now
                elif now - changed > stall_s:
                    raise TimeoutError(f"bench ingest stalled: {self.acked}/{total} acknowledged by the broker, "
                                       f"{consumed_count()}/{total} consumed, no progress for {stall_s:.0f} s")
        finally:
            for client in clients.values():
                client.disconnect()
                client.loop_stop()
        return started


def _bare_subscriber(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """Messages/s from a bare paho subscriber (QoS 1, auto PUBACK) that only counts."""
    publisher = _Publisher(f"mqtt://127.0.0.1:{port}", payloads)
    subscribed = threading.Event()
    count = 0
    last = [0.0]
    expected = len(payloads)

    def on_subscribe(client, userdata, mid, reason_codes, props) -> None:
        subscribed.set()

    def on_message(client, userdata, msg) -> None:
        nonlocal count
        count += 1
        if count == expected:
            last[0] = time.time()
            publisher.consumed.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-bare-sub-{time.time_ns()}")
    sub.on_subscribe = on_subscribe
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe(VITALS_TOPIC_FILTER, qos=1)
    sub.loop_start()
    try:
        if not subscribed.wait(10):
            raise TimeoutError("bench ingest: the bare subscriber's SUBSCRIBE was not acknowledged")
        started = publisher.run(lambda: count)
    finally:
        sub.disconnect()
        sub.loop_stop()
    return expected / (last[0] - started)


class _TimedRuntime(EmbeddedRuntime):
    """The embedded runtime, timed: the time spent deciding batches (the pipeline's own cost,
    with the desk's share and the hand-off to the writer thread, as run here), and the moment
    the last of `expected` messages is durable (stored on the writer thread, then acknowledged),
    not when it was scored: the pipeline's job ends with the readings on disk."""

    def __init__(self, expected: int, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.busy_s = 0.0
        self.done = asyncio.Event()
        self.finished_at = 0.0

    def decide(self, messages):  # noqa: ANN001, ANN201
        entered = time.perf_counter()
        decision = super().decide(messages)
        self.busy_s += time.perf_counter() - entered
        return decision

    def _stored(self, unstored) -> None:  # noqa: ANN001
        super()._stored(unstored)
        if self.processed_messages >= self.expected and not self.done.is_set():
            self.finished_at = time.time()
            self.done.set()


async def _pipeline_run(port: int, roster: Roster, payloads, pace: float | None, data_dir: Path,
                        publishers: str = "one", logins: bool = False):
    # Publish times only for the paced latency phase: at full rate the publisher does exactly
    # what it does for the bare subscriber.
    sent_at: dict[bytes, float] | None = {} if pace else None
    latencies: list[float] = []

    def announce(a: AnnouncedAlert) -> None:
        if sent_at is not None and a.event == "raised" and a.source is not None and a.source.payload in sent_at:
            latencies.append(time.time() - sent_at[a.source.payload])

    # The embedded runtime's own default: a device's PUBACK only once its batch is durable
    # (VIGIL_MQTT_ACK_AFTER_STORE), while the bare broker of the baseline PUBACKs on receipt.
    # Devices log in (issue 11) with `logins`; otherwise the broker runs in its development mode (anonymous).
    settings = VigilSettings(data_dir=data_dir, database_url=None, mqtt_url=None, mqtt_port=port, http_port=free_port(),
                             mqtt_ack_after_store=True, mqtt_allow_anonymous=not logins)
    # Hours of readings are replayed in seconds, so the runtime's timers (silent devices,
    # escalations) run on the replay's clock (the newest message processed), not the wall clock:
    # on the wall clock every device would look hours silent, and most alerts would be
    # device_offline raised and cleared over and over.
    data_t = _data_times(payloads)
    runtime: _TimedRuntime | None = None

    def replay_clock() -> float:
        done = runtime.pipeline.totals.payloads if runtime is not None else 0
        return data_t[min(len(data_t) - 1, max(0, done - 1))]

    expected = len(payloads)
    # The end of the run is stamped when the batch holding the last message is processed, as
    # the bare subscriber stamps its last message, instead of polling for it on the event loop
    # that the broker and the pipeline share (a 5 ms poll cost that loop ~200 wake-ups a second).
    runtime = _TimedRuntime(expected, settings, Registry(roster), announce=announce, clock=replay_clock)
    devices = None if publishers == "one" else \
        {d.device_id: runtime.credentials.enrol(d.device_id) if logins else None for p in roster.patients for d in p.devices}
    publisher = _Publisher(f"mqtt://127.0.0.1:{port}", payloads, pace, sent_at, devices)
    totals = runtime.pipeline.totals
    done = runtime.done
    await runtime.start()
    try:
        loop = asyncio.get_running_loop()
        publishing = loop.run_in_executor(None, publisher.run, lambda: totals.payloads)
        waiting = asyncio.ensure_future(done.wait())
        await asyncio.wait({publishing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        finished = runtime.finished_at if done.is_set() else time.time()
        publisher.consumed.set()
        started = await publishing  # raises if the run did not complete
        if totals.payloads < expected:
            raise RuntimeError(f"bench ingest: pipeline processed {totals.payloads}/{expected} messages")
    finally:
        await runtime.stop()
    wall = finished - started
    return {"msgs_per_s": expected / wall, "readings_per_s": totals.readings / wall,
            "readings": totals.readings, "alerts": len(totals.raised), "alerts_by_kind": dict(totals.alerts_by_kind),
            "latencies": latencies,
            "batches": runtime.processed_batches, "process_s": runtime.busy_s}


def _pct(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(value, 4)


def bench_ingest(messages: int = 20_000, batch_size: int = 10, patients: int = 200, seed: int = 11,
                 publishers: str = "one", logins: bool = False) -> dict[str, object]:
    """`publishers`: "one" connection for the whole ward (the broker's development mode), or "per-device"
    connections, anonymous or, with `logins`, each device with its own credentials (issue 11)."""
    if logins and publishers != "per-device":
        raise ValueError("--logins needs --publishers per-device: a device may publish only on its own topics")
    payloads, roster = _payloads(messages, batch_size, patients, seed)

    async def bare_run() -> float:
        # The broker runs in this process's event loop, exactly as in the embedded runtime.
        port = free_port()
        broker = await start_broker("127.0.0.1", port, access=BrokerAccess.anonymous_for_development())
        try:
            return await asyncio.get_running_loop().run_in_executor(None, _bare_subscriber, port, payloads)
        finally:
            await broker.shutdown()

    bare = asyncio.run(bare_run())  # a fresh event loop and broker per phase
    with tempfile.TemporaryDirectory() as tmp:
        full = asyncio.run(_pipeline_run(free_port(), roster, payloads, None, Path(tmp) / "max", publishers, logins))
        half_payloads = payloads[: max(1000, len(payloads) // 2)]
        half = asyncio.run(_pipeline_run(free_port(), roster, half_payloads, full["msgs_per_s"] / 2, Path(tmp) / "half",
                                         publishers, logins))
    return {
        "bench": "ingest",
        "publishers": publishers,
        "logins": logins,
        "messages": len(payloads),
        "samples_per_message": batch_size,
        "bare_broker_msgs_per_s": round(bare),
        "pipeline_msgs_per_s": round(full["msgs_per_s"]),
        "pipeline_readings_per_s": round(full["readings_per_s"]),
        "ratio_to_bare_broker": round(full["msgs_per_s"] / bare, 3),
        "pipeline_batches": full["batches"],
        # Diagnostic, not the target: milliseconds per message spent inside Pipeline.process in
        # the full-rate phase (wall time on the shared loop, GIL waits included). Less sensitive
        # than the ratio to other load on the machine shifting between the phases.
        "pipeline_process_ms_per_msg": round(full["process_s"] * 1000 / len(payloads), 3),
        "half_load_msgs_per_s": round(full["msgs_per_s"] / 2),
        "half_load_messages": len(half_payloads),
        "alerts_at_half_load": half["alerts"],
        "publish_to_alert_p50_s": _pct(half["latencies"], 0.5),
        "publish_to_alert_p99_s": _pct(half["latencies"], 0.99),
    }
