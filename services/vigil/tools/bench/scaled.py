"""`vigil bench scaled`: the scaled path on the real servers deploy/local starts.

Parts (each compares against a baseline measured in the same run):
- processor: records as the gateway writes them -> `vigil.readings`; one Faust worker, then two,
  against a plain aiokafka consumer that reads the same topic.
- gateway: QoS 1 payloads through Mosquitto to `vigil ingest`, against a bare paho subscriber.
- latency: at a stated load, publish -> InfluxDB and publish -> alert, p50 and p99.
- soak: the same load for a while; peak resident memory of the gateway and each worker.
Needs the settings `deploy/local/up` writes (source ~/.cache/vigil/local/env).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from vigil.shell.contract.device import VitalsBatch
from vigil.shell.streams.records import ReadingsRecord
from vigil.shell.contract.validation import to_reading
from vigil.settings import VigilSettings
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet

RATE = 1 / 15
REPO = Path(__file__).resolve().parents[4]  # services/vigil/tools/bench/ -> the repository


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read())


def _wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stack:
    """Vigil services as subprocesses with their own topics, bucket and ids."""

    def __init__(self, workdir: Path, roster: dict, patients_prefix: str) -> None:
        self.run = "b" + uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.settings = VigilSettings()
        roster_path = workdir / "roster.yaml"
        roster_path.write_text(yaml.safe_dump(roster, sort_keys=False))
        self.env = dict(os.environ)
        self.env.update({
            "VIGIL_READINGS_TOPIC": f"vigil.readings.{self.run}", "VIGIL_ALERTS_TOPIC": f"vigil.alerts.{self.run}",
            "VIGIL_DEADLETTER_TOPIC": f"vigil.deadletter.{self.run}", "VIGIL_PROCESSOR_APP_ID": f"vigil-bench-{self.run}",
            "VIGIL_MQTT_SHARED_GROUP": f"bench-{self.run}", "VIGIL_ROSTER": str(roster_path), "VIGIL_LOG_LEVEL": "WARNING",
        })
        self.procs: dict[str, tuple[subprocess.Popen, int]] = {}
        self.gateways: set[str] = set()

    def start(self, name: str, *args: str) -> int:
        if args[0] == "ingest" and "--id" in args:
            self.gateways.add(args[args.index("--id") + 1])
        port = _port()
        extra = ["--web-port", str(port), "--data-dir", str(self.workdir / name)] if args[0] == "processor" else ["--http-port", str(port)]
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", *args, *extra], env=self.env, stdout=log, stderr=log,
                                cwd=self.workdir)
        self.procs[name] = (proc, port)
        _wait(lambda: _get(port, "/healthz").get("status") in ("ok", "degraded"), 120, f"{name} to start")
        return port

    def health(self, name: str) -> dict:
        return _get(self.procs[name][1], "/healthz")

    def cpu_s(self) -> dict[str, float]:
        return {name: _cpu_s(proc.pid) for name, (proc, _) in self.procs.items() if proc.poll() is None}

    def rss_kb(self) -> dict[str, int]:
        return {name: _rss_kb(proc.pid) for name, (proc, _) in self.procs.items() if proc.poll() is None}

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        for gateway_id in self.gateways:  # the bench's gateways never come back: drop their sessions
            subprocess.run([sys.executable, "-m", "vigil.cli", "ingest", "--id", gateway_id, "--retire"], env=self.env,
                           cwd=self.workdir, check=True, capture_output=True, timeout=60)
        self.gateways.clear()


def _records(patients: int, messages: int, batch_size: int, seed: int, prefix: str):
    sim_s = messages * batch_size / patients / RATE * 1.02
    start = time.time() - sim_s - 120
    plan = plan_cohort(patients, seed, start, sim_s, id_prefix=prefix)
    out = [m for m in Fleet(plan, RATE, batch_size).batches_until(start + sim_s) if m.topic.endswith("/vitals")]
    return plan, out[:messages]


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _plain_consumer(bootstrap: str, topic: str, total: int) -> float:
    """The baseline: a plain aiokafka consumer reading and parsing every record."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"plain-{uuid.uuid4().hex[:6]}", enable_auto_commit=False)
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for messages in batch.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    ReadingsRecord.model_validate_json(message.value)
                    seen += 1
        return seen / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


async def _plain_pipeline_consumer(settings: VigilSettings, topic: str, roster: dict, total_readings: int) -> float:
    """Faust's work without Faust: a plain aiokafka consumer running the same Pipeline and
    writing the same InfluxDB series (state in memory, no changelog): what Faust's own
    machinery costs is the gap between this and a worker."""
    from aiokafka import AIOKafkaConsumer

    from vigil.shell.pipeline.pipeline import Message, Pipeline
    from vigil.shell.observability.metrics import Metrics
    from vigil.shell.stores.influx import InfluxSeriesWriter
    from vigil.shell.registry import Registry, Roster
    from vigil.shell.stores.sql import SqlStore

    store = SqlStore(settings.database_url or settings.sqlite_url())
    pipeline = Pipeline(Registry(Roster.model_validate(roster)), Metrics(), store)
    influx = InfluxSeriesWriter(settings.influx_url, settings.influx_token, settings.influx_org, settings.influx_bucket)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"plain-pipeline-{uuid.uuid4().hex[:6]}", enable_auto_commit=False)
    await consumer.start()
    try:
        started = None
        while pipeline.totals.readings < total_readings:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            records = [ReadingsRecord.model_validate_json(m.value) for messages in batch.values() for m in messages]
            if not records:
                continue
            started = started or time.perf_counter()
            decision = pipeline.process_readings([(r.to_readings(), Message(r.topic, b"", r.received_at))
                                                  for r in records])
            await influx.write(decision.batch.readings)
            await consumer.commit()
        return total_readings / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        influx.close()
        store.close()


def bench_processor(messages: int = 4000, batch_size: int = 10, patients: int = 200, seed: int = 3) -> dict[str, object]:
    settings = VigilSettings()
    result: dict[str, object] = {"part": "processor", "messages": messages, "samples_per_message": batch_size}
    for workers in (1, 2):
        prefix = f"w{workers}{uuid.uuid4().hex[:4]}-"
        plan, out = _records(patients, messages, batch_size, seed, prefix)
        records = []
        for message in out:
            batch = VitalsBatch.model_validate_json(message.payload)
            patient_id = message.device_id.replace("-wr-", "-pt-")
            readings = [to_reading(s, batch.device_id, patient_id) for s in batch.samples]
            records.append((patient_id.encode(), ReadingsRecord.of(readings, message.topic, time.time()).to_json()))
        total_readings = sum(m.sample_count for m in out)
        with tempfile.TemporaryDirectory() as tmp:
            stack = Stack(Path(tmp), plan.roster(), prefix)
            try:
                asyncio.run(_ensure(stack))
                names = [f"w{i + 1}" for i in range(workers)]
                for name in names:
                    stack.start(name, "processor", "worker")
                time.sleep(3)  # let the group settle before the clock starts
                started = time.perf_counter()
                asyncio.run(_produce(settings.kafka_bootstrap, stack.env["VIGIL_READINGS_TOPIC"], records))
                _wait(lambda: sum(stack.health(n)["readings"] for n in names) >= total_readings, 600, "the workers", 0.1)
                elapsed = time.perf_counter() - started
                result[f"workers_{workers}"] = {"readings_per_s": round(total_readings / elapsed),
                                                "msgs_per_s": round(len(records) / elapsed)}
                plain = asyncio.run(_plain_consumer(settings.kafka_bootstrap, stack.env["VIGIL_READINGS_TOPIC"], len(records)))
                result[f"plain_consumer_msgs_per_s_{workers}"] = round(plain)
                result[f"ratio_{workers}_worker_to_plain"] = round(len(records) / elapsed / plain, 3)
                if workers == 1:
                    same_work = asyncio.run(_plain_pipeline_consumer(
                        VigilSettings(influx_bucket=settings.influx_bucket), stack.env["VIGIL_READINGS_TOPIC"],
                        plan.roster(), total_readings))
                    result["plain_consumer_same_work_readings_per_s"] = round(same_work)
                    result["ratio_1_worker_to_plain_same_work"] = round(total_readings / elapsed / same_work, 3)
            finally:
                stack.stop()
    return result


async def _ensure(stack: Stack) -> None:
    from vigil.shell.streams.topics import ensure_topics

    settings = VigilSettings(readings_topic=stack.env["VIGIL_READINGS_TOPIC"], alerts_topic=stack.env["VIGIL_ALERTS_TOPIC"],
                             deadletter_topic=stack.env["VIGIL_DEADLETTER_TOPIC"])
    await ensure_topics(settings)


def _enrol(devices: list[str]) -> None:
    lines = "".join(f"{d} {d}-bench\n" for d in devices)
    subprocess.run([str(REPO / "deploy/local/mqtt-device"), "add-many"], input=lines, text=True, check=True,
                   capture_output=True)


def _device_clients(url: str, devices: list[str]) -> dict[str, mqtt.Client]:
    from vigil_simulators.publisher import connect

    clients = {d: connect(url, f"bench-{d}", username=d, password=f"{d}-bench") for d in devices}
    _wait(lambda: all(c.is_connected() for c in clients.values()), 30, "devices to log in")
    return clients


def _publish_all(clients: dict[str, mqtt.Client], out, pace: float | None = None, sent: dict | None = None) -> float:
    started = time.time()
    infos = []
    for i, message in enumerate(out):
        if pace:
            delay = started + i / pace - time.time()
            if delay > 0:
                time.sleep(delay)
        if sent is not None:
            sent[i] = time.time()
        infos.append(clients[message.device_id].publish(message.topic, message.payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    return started


def bench_gateway(messages: int = 6000, batch_size: int = 10, devices: int = 50, seed: int = 4) -> dict[str, object]:
    """`vigil ingest` against a bare paho subscriber (QoS 1), same payloads, same Mosquitto."""
    settings = VigilSettings()
    prefix = "g" + uuid.uuid4().hex[:4] + "-"
    plan, out = _records(devices, messages, batch_size, seed, prefix)
    device_ids = [p.device_id for p in plan.patients]
    _enrol(device_ids)
    url = settings.mqtt_url or "mqtt://127.0.0.1:18830"
    port = int(url.rsplit(":", 1)[1])

    # The bare subscriber runs in its own process, as the gateway does: same footing.
    bare = subprocess.Popen([sys.executable, "-m", "vigil.tools.bench.scaled", "bare", str(port), settings.mqtt_username or "",
                             settings.mqtt_password or "", str(len(out))], stdout=subprocess.PIPE, text=True)
    assert bare.stdout is not None
    assert bare.stdout.readline().strip() == "subscribed"
    clients = _device_clients(url, device_ids)
    started = _publish_all(clients, out)
    finished = float(bare.stdout.readline())
    bare.wait(30)
    bare_rate = len(out) / (finished - started)

    total_readings = sum(m.sample_count for m in out)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), plan.roster(), prefix)
        try:
            stack.start("gateway", "ingest", "--id", f"bench-{prefix}")
            started = _publish_all(clients, out)
            _wait(lambda: stack.health("gateway")["forwarded_readings"] >= total_readings, 300, "the gateway", 0.05)
            gateway_rate = len(out) / (time.time() - started)
            rss = stack.rss_kb()
        finally:
            stack.stop()
            for client in clients.values():
                client.disconnect()
                client.loop_stop()
    return {"part": "gateway", "messages": len(out), "samples_per_message": batch_size, "devices": devices,
            "bare_paho_msgs_per_s": round(bare_rate), "gateway_msgs_per_s": round(gateway_rate),
            "gateway_readings_per_s": round(gateway_rate * batch_size),
            "ratio_gateway_to_bare": round(gateway_rate / bare_rate, 3), "gateway_rss_mb": round(rss.get("gateway", 0) / 1024, 1)}


def bench_latency(seconds: float = 30.0, rate_msgs_per_s: float = 100.0, devices: int = 100, batch_size: int = 4,
                  seed: int = 8, soak: bool = False, warmup_s: float = 10.0) -> dict[str, object]:
    """Publish at a fixed rate through the whole scaled path; publish->InfluxDB and publish->alert.

    Latencies of messages published in the first `warmup_s` seconds (while the consumer group
    settles) are reported apart, not mixed into the steady-state percentiles."""
    from aiokafka import AIOKafkaConsumer
    from influxdb_client import InfluxDBClient

    settings = VigilSettings()
    prefix = "l" + uuid.uuid4().hex[:4] + "-"
    messages = int(seconds * rate_msgs_per_s)
    plan, out = _records(devices, messages, batch_size, seed, prefix)
    # Which message carried each reading time, so an alert can be traced to its publish.
    carrier: dict[tuple[str, float], int] = {}
    for i, message in enumerate(out):
        for sample in json.loads(message.payload)["samples"]:
            from datetime import datetime

            carrier[(message.device_id.replace("-wr-", "-pt-"), round(datetime.fromisoformat(sample["ts"]).timestamp(), 3))] = i
    _enrol([p.device_id for p in plan.patients])
    url = settings.mqtt_url or "mqtt://127.0.0.1:18830"
    alert_latencies: list[float] = []
    alert_sent_latencies: list[float] = []
    influx_latencies: list[float] = []
    rss_peak: dict[str, int] = {}
    rss_first: dict[str, int] = {}
    rss_curve: dict[str, list[tuple[float, int]]] = {}
    sent: dict[int, float] = {}
    worker_batches: dict[str, object] = {}
    cpu_used: dict[str, float] = {}
    bench_cpu = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), plan.roster(), prefix)
        stop = threading.Event()
        try:
            stack.start("gateway", "ingest", "--id", f"bench-{prefix}")
            stack.start("w1", "processor", "worker")
            stack.start("w2", "processor", "worker")
            time.sleep(3)

            def watch_alerts() -> None:
                async def consume() -> None:
                    # A short long-poll, so the watcher itself adds little (see processor/transport.py).
                    consumer = AIOKafkaConsumer(stack.env["VIGIL_ALERTS_TOPIC"], bootstrap_servers=settings.kafka_bootstrap,
                                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
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
                                        index = carrier.get((alert["patient_id"], round(alert["raised_t"], 3)))
                                        if index is not None and index in sent:
                                            alert_latencies.append((sent[index], now - sent[index]))
                                            # the worker's send time (the record's Kafka timestamp)
                                            alert_sent_latencies.append((sent[index], record.timestamp / 1000 - sent[index]))
                    finally:
                        await consumer.stop()

                asyncio.run(consume())

            def probe_influx() -> None:
                with InfluxDBClient(url=settings.influx_url, token=settings.influx_token, org=settings.influx_org) as client:
                    query = client.query_api()
                    probed = -1
                    while not stop.is_set():
                        if not sent or max(sent) == probed:  # each message probed once: after the
                            time.sleep(0.1)                  # last publish, re-probing it would time
                            continue                         # the idle wait, not the path
                        index = probed = max(sent)
                        message = out[index]
                        last = json.loads(message.payload)["samples"][-1]
                        from datetime import datetime

                        t_ns = int(round(datetime.fromisoformat(last["ts"]).timestamp() * 1e9))
                        patient = message.device_id.replace("-wr-", "-pt-")
                        flux = (f'from(bucket: "{settings.influx_bucket}") |> range(start: time(v: {t_ns}), stop: time(v: {t_ns + 1})) '
                                f'|> filter(fn: (r) => r.patient_id == "{patient}" and r._field == "seq")')
                        deadline = time.time() + 10
                        while time.time() < deadline and not stop.is_set():
                            if any(t.records for t in query.query(flux)):
                                influx_latencies.append((sent[index], time.time() - sent[index]))
                                break
                            time.sleep(0.01)
                        time.sleep(0.5)

            def sample_rss() -> None:
                while not stop.is_set():
                    for name, kb in stack.rss_kb().items():
                        rss_curve.setdefault(name, []).append((time.time(), kb))
                        rss_first.setdefault(name, kb)
                        rss_peak[name] = max(rss_peak.get(name, 0), kb)
                    stop.wait(5)

            threads = [threading.Thread(target=f, daemon=True) for f in (watch_alerts, probe_influx, sample_rss)]
            for thread in threads:
                thread.start()
            clients = _device_clients(url, [p.device_id for p in plan.patients])
            cpu_before, bench_cpu_before = stack.cpu_s(), time.process_time()
            _publish_all(clients, out, pace=rate_msgs_per_s, sent=sent)
            bench_cpu = time.process_time() - bench_cpu_before
            time.sleep(5)
            cpu_used = {name: cpu - cpu_before.get(name, 0.0) for name, cpu in stack.cpu_s().items()}
            stop.set()
            for thread in threads:
                thread.join(15)
            rss_last = stack.rss_kb()
            # Where each worker's time went, batch by batch (stage timings from its /healthz).
            worker_batches = {name: stack.health(name).get("batches") for name in ("w1", "w2")}
            for client in clients.values():
                client.disconnect()
                client.loop_stop()
        finally:
            stop.set()
            stack.stop()

    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)

    first_publish = min(sent.values()) if sent else 0.0
    steady_alerts = [lat for at, lat in alert_latencies if at - first_publish >= warmup_s]
    steady_influx = [lat for at, lat in influx_latencies if at - first_publish >= warmup_s]
    steady_sent = [lat for at, lat in alert_sent_latencies if at - first_publish >= warmup_s]
    warm_alerts = [lat for at, lat in alert_latencies if at - first_publish < warmup_s]
    result: dict[str, object] = {
        "part": "soak" if soak else "latency", "warmup_excluded_s": warmup_s, "seconds": seconds, "load_msgs_per_s": rate_msgs_per_s,
        "load_readings_per_s": rate_msgs_per_s * batch_size, "devices": devices,
        "publish_to_influx_p50_s": pct(steady_influx, 0.5), "publish_to_influx_p99_s": pct(steady_influx, 0.99),
        "influx_probes": len(steady_influx),
        # the slowest probes: (seconds after the first publish, latency)
        "publish_to_influx_slowest": sorted(((round(at - first_publish, 1), round(lat, 2)) for at, lat in influx_latencies),
                                            key=lambda item: -item[1])[:5],
        "publish_to_alert_p50_s": pct(steady_alerts, 0.5), "publish_to_alert_p99_s": pct(steady_alerts, 0.99),
        "alerts_timed": len(steady_alerts),
        # publish -> the worker sending the alert record (its Kafka timestamp): the rest is delivery to a reader
        "publish_to_alert_sent_p50_s": pct(steady_sent, 0.5), "publish_to_alert_sent_p99_s": pct(steady_sent, 0.99),
        "warmup_alerts": len(warm_alerts), "warmup_publish_to_alert_max_s": round(max(warm_alerts), 3) if warm_alerts else None,
        "worker_batches": worker_batches,
        # CPU each service used while the load ran, per 1,000 readings published
        "cpu_ms_per_1000_readings": {name: round(1e6 * cpu / (messages * batch_size), 1) for name, cpu in cpu_used.items()},
        # the bench process itself: load generator and the watchers
        "bench_cpu_ms_per_1000_readings": round(1e6 * bench_cpu / (messages * batch_size), 1),
        "rss_mb_first": {k: round(v / 1024, 1) for k, v in rss_first.items()},
        "rss_mb_peak": {k: round(v / 1024, 1) for k, v in rss_peak.items()},
        "rss_mb_last": {k: round(v / 1024, 1) for k, v in rss_last.items()},
        # Growth over the second half of the run: near zero means memory has levelled off.
        "rss_mb_second_half_growth": {k: round((c[-1][1] - c[len(c) // 2][1]) / 1024, 1) for k, c in rss_curve.items() if c},
        # one sample a minute (every 12th, at 5 s apart), to see whether memory levels off
        "rss_mb_by_minute": {k: [round(kb / 1024) for _, kb in c[::12]] for k, c in rss_curve.items()},
    }
    return result


def _bare_subscriber_main(port: int, username: str, password: str, expected: int) -> None:
    """Count QoS 1 messages and print the time the last one arrived (the baseline)."""
    done = threading.Event()
    count = [0]

    def on_message(client, userdata, msg):
        count[0] += 1
        if count[0] >= expected:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:6]}")
    if username:
        client.username_pw_set(username, password)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("vigil/v1/devices/+/vitals", qos=1)
    client.loop_start()
    time.sleep(0.5)
    print("subscribed", flush=True)
    done.wait(600)
    print(time.time(), flush=True)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "bare":
    _bare_subscriber_main(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
