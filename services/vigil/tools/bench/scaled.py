"""`vigil bench scaled`: the scaled path on the real servers deploy/local starts.

Parts (each compares against a baseline measured in the same run, tools/bench/baselines.py):
- processor: records as the gateway writes them -> `vigil.readings`; one Faust worker, then two,
  against a plain aiokafka consumer that reads the same topic.
- gateway: QoS 1 payloads through Mosquitto to `vigil ingest`, against a bare paho subscriber.
- latency: at a stated load, publish -> InfluxDB and publish -> alert, p50 and p99.
- soak: the same load for a while; peak resident memory of the gateway and each worker.
The services run through tools/stack.py (as the integration tests do); what the latency part
watches while the load runs is in tools/bench/latency_watch.py.
Needs the settings `deploy/local/up` writes (source ~/.cache/vigil/local/env).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from vigil.settings import VigilSettings, secret_value
from vigil.shell.contract.device import VitalsBatch
from vigil.shell.contract.validation import to_reading
from vigil.shell.observability.percentile import percentile
from vigil.shell.streams.records import ReadingsRecord
from vigil.tools.bench.baselines import plain_consumer, plain_pipeline_consumer
from vigil.tools.bench.latency_watch import LatencyWatch
from vigil.tools.stack import KAFKA_ADMIN, ServiceStack, kafka_settings, run_topics, wait_until
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet

RATE = 1 / 15
REPO = Path(__file__).resolve().parents[4]  # services/vigil/tools/bench/scaled.py -> the repository


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


class BenchStack(ServiceStack):
    """The bench's services: a run of their own (topics, consumer group, MQTT share group, roster),
    quiet logs, and what each service costs in CPU and memory."""

    def __init__(self, workdir: Path, roster: dict) -> None:
        self.run = "b" + uuid.uuid4().hex[:8]
        roster_path = workdir / "roster.yaml"
        roster_path.write_text(yaml.safe_dump(roster, sort_keys=False))
        env = {**os.environ, **run_topics(self.run), "VIGIL_PROCESSOR_APP_ID": f"vigil-processor-bench-{self.run}",
               "VIGIL_MQTT_SHARED_GROUP": f"bench-{self.run}", "VIGIL_ROSTER": str(roster_path), "VIGIL_LOG_LEVEL": "WARNING"}
        super().__init__(env, workdir)

    def cpu_s(self) -> dict[str, float]:
        return {name: _cpu_s(proc.pid) for name, proc in self.procs.items() if proc.poll() is None}

    def rss_kb(self) -> dict[str, int]:
        return {name: _rss_kb(proc.pid) for name, proc in self.procs.items() if proc.poll() is None}


def _records(patients: int, messages: int, batch_size: int, seed: int, prefix: str):
    sim_s = messages * batch_size / patients / RATE * 1.02
    start = time.time() - sim_s - 120
    plan = plan_cohort(patients, seed, start, sim_s, id_prefix=prefix)
    out = [m for m in Fleet(plan, RATE, batch_size).batches_until(start + sim_s) if m.topic.endswith("/vitals")]
    return plan, out[:messages]


async def _produce(settings: VigilSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    from vigil.shell.streams.kafka_login import kafka_security

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=5, **kafka_security(settings))
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def bench_processor(messages: int = 4000, batch_size: int = 10, patients: int = 200, seed: int = 3) -> dict[str, object]:
    settings = kafka_settings(KAFKA_ADMIN)  # the bench's own Kafka clients log in as the admin
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
            stack = BenchStack(Path(tmp), plan.roster())
            try:
                stack.create_topics()
                names = [f"w{i + 1}" for i in range(workers)]
                for name in names:
                    stack.start_ready(name, "processor", "worker")
                time.sleep(3)  # let the group settle before the clock starts
                started = time.perf_counter()
                asyncio.run(_produce(settings, stack.env["VIGIL_READINGS_TOPIC"], records))
                wait_until(lambda: sum(stack.health(n)["readings"] for n in names) >= total_readings, 600, "the workers", 0.1)
                elapsed = time.perf_counter() - started
                result[f"workers_{workers}"] = {"readings_per_s": round(total_readings / elapsed),
                                                "msgs_per_s": round(len(records) / elapsed)}
                plain = asyncio.run(plain_consumer(settings, stack.env["VIGIL_READINGS_TOPIC"], len(records)))
                result[f"plain_consumer_msgs_per_s_{workers}"] = round(plain)
                result[f"ratio_{workers}_worker_to_plain"] = round(len(records) / elapsed / plain, 3)
                if workers == 1:
                    same_work = asyncio.run(plain_pipeline_consumer(
                        kafka_settings(KAFKA_ADMIN, influx_bucket=settings.influx_bucket), stack.env["VIGIL_READINGS_TOPIC"],
                        plan.roster(), total_readings))
                    result["plain_consumer_same_work_readings_per_s"] = round(same_work)
                    result["ratio_1_worker_to_plain_same_work"] = round(total_readings / elapsed / same_work, 3)
            finally:
                stack.stop()
    return result


def _enrol(devices: list[str]) -> None:
    lines = "".join(f"{d} {d}-bench\n" for d in devices)
    subprocess.run([str(REPO / "deploy/local/mqtt-device"), "add-many"], input=lines, text=True, check=True,
                   capture_output=True)


def _device_url() -> str:
    """Devices publish on the broker's device listener (deploy/local: VIGIL_MQTT_DEVICE_URL), not the
    service listener Vigil's gateways log in to (VIGIL_MQTT_URL)."""
    return os.environ.get("VIGIL_MQTT_DEVICE_URL", "mqtt://127.0.0.1:18830")


def _device_clients(url: str, devices: list[str]) -> dict[str, mqtt.Client]:
    from vigil_simulators.publisher import connect

    clients = {d: connect(url, f"bench-{d}", username=d, password=f"{d}-bench") for d in devices}
    wait_until(lambda: all(c.is_connected() for c in clients.values()), 30, "devices to log in")
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
    port = int((settings.mqtt_url or "mqtt://127.0.0.1:18832").rsplit(":", 1)[1])  # the service listener

    # The bare subscriber runs in its own process, as the gateway does: same footing.
    bare = subprocess.Popen([sys.executable, "-m", "vigil.tools.bench.baselines", "bare", str(port), settings.mqtt_username or "",
                             secret_value(settings.mqtt_password) or "", str(len(out))], stdout=subprocess.PIPE, text=True)
    assert bare.stdout is not None
    assert bare.stdout.readline().strip() == "subscribed"
    clients = _device_clients(_device_url(), device_ids)
    started = _publish_all(clients, out)
    finished = float(bare.stdout.readline())
    bare.wait(30)
    bare_rate = len(out) / (finished - started)

    total_readings = sum(m.sample_count for m in out)
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack(Path(tmp), plan.roster())
        try:
            stack.create_topics()
            stack.start_ready("gateway", "ingest", "--id", f"bench-{prefix}")
            started = _publish_all(clients, out)
            wait_until(lambda: stack.health("gateway")["forwarded_readings"] >= total_readings, 300, "the gateway", 0.05)
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
    settings = kafka_settings(KAFKA_ADMIN)  # the latency watch reads the alerts as the admin
    prefix = "l" + uuid.uuid4().hex[:4] + "-"
    messages = int(seconds * rate_msgs_per_s)
    plan, out = _records(devices, messages, batch_size, seed, prefix)
    # Which message carried each reading time, so an alert can be traced to its publish.
    carrier: dict[tuple[str, float], int] = {}
    for i, message in enumerate(out):
        for sample in json.loads(message.payload)["samples"]:
            carrier[(message.device_id.replace("-wr-", "-pt-"), round(datetime.fromisoformat(sample["ts"]).timestamp(), 3))] = i
    _enrol([p.device_id for p in plan.patients])
    sent: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack(Path(tmp), plan.roster())
        watch = LatencyWatch(settings, stack.env["VIGIL_ALERTS_TOPIC"], out, carrier, sent, stack.rss_kb)
        try:
            stack.create_topics()
            stack.start_ready("gateway", "ingest", "--id", f"bench-{prefix}")
            stack.start_ready("w1", "processor", "worker")
            stack.start_ready("w2", "processor", "worker")
            time.sleep(3)
            watch.start()
            clients = _device_clients(_device_url(), [p.device_id for p in plan.patients])
            cpu_before, bench_cpu_before = stack.cpu_s(), time.process_time()
            _publish_all(clients, out, pace=rate_msgs_per_s, sent=sent)
            bench_cpu = time.process_time() - bench_cpu_before
            time.sleep(5)
            cpu_used = {name: cpu - cpu_before.get(name, 0.0) for name, cpu in stack.cpu_s().items()}
            watch.stop()
            rss_last = stack.rss_kb()
            # Where each worker's time went, batch by batch (stage timings from its /healthz).
            worker_batches = {name: stack.health(name).get("batches") for name in ("w1", "w2")}
            for client in clients.values():
                client.disconnect()
                client.loop_stop()
        finally:
            watch.stop(join_s=0)
            stack.stop()
    readings = messages * batch_size
    return {"part": "soak" if soak else "latency", "warmup_excluded_s": warmup_s, "seconds": seconds,
            "load_msgs_per_s": rate_msgs_per_s, "load_readings_per_s": rate_msgs_per_s * batch_size, "devices": devices,
            **_latencies(watch, sent, warmup_s), "worker_batches": worker_batches,
            # CPU each service used while the load ran, per 1,000 readings published
            "cpu_ms_per_1000_readings": {name: round(1e6 * cpu / readings, 1) for name, cpu in cpu_used.items()},
            # the bench process itself: load generator and the watchers
            "bench_cpu_ms_per_1000_readings": round(1e6 * bench_cpu / readings, 1),
            **_memory(watch, rss_last)}


def _pct(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(value, 3)


def _latencies(watch: LatencyWatch, sent: dict[int, float], warmup_s: float) -> dict[str, object]:
    """p50 and p99 of each latency after the warm-up; the warm-up's alerts apart."""
    first_publish = min(sent.values()) if sent else 0.0
    steady_alerts = [lat for at, lat in watch.alert_latencies if at - first_publish >= warmup_s]
    steady_influx = [lat for at, lat in watch.influx_latencies if at - first_publish >= warmup_s]
    steady_sent = [lat for at, lat in watch.alert_sent_latencies if at - first_publish >= warmup_s]
    warm_alerts = [lat for at, lat in watch.alert_latencies if at - first_publish < warmup_s]
    return {
        "publish_to_influx_p50_s": _pct(steady_influx, 0.5), "publish_to_influx_p99_s": _pct(steady_influx, 0.99),
        "influx_probes": len(steady_influx),
        # the slowest probes: (seconds after the first publish, latency)
        "publish_to_influx_slowest": sorted(((round(at - first_publish, 1), round(lat, 2)) for at, lat in watch.influx_latencies),
                                            key=lambda item: -item[1])[:5],
        "publish_to_alert_p50_s": _pct(steady_alerts, 0.5), "publish_to_alert_p99_s": _pct(steady_alerts, 0.99),
        "alerts_timed": len(steady_alerts),
        # publish -> the worker sending the alert record (its Kafka timestamp): the rest is delivery to a reader
        "publish_to_alert_sent_p50_s": _pct(steady_sent, 0.5), "publish_to_alert_sent_p99_s": _pct(steady_sent, 0.99),
        "warmup_alerts": len(warm_alerts), "warmup_publish_to_alert_max_s": round(max(warm_alerts), 3) if warm_alerts else None,
    }


def _memory(watch: LatencyWatch, rss_last: dict[str, int]) -> dict[str, object]:
    """Resident memory per service: first, peak, last, and whether it levelled off."""
    return {
        "rss_mb_first": {k: round(v / 1024, 1) for k, v in watch.rss_first.items()},
        "rss_mb_peak": {k: round(v / 1024, 1) for k, v in watch.rss_peak.items()},
        "rss_mb_last": {k: round(v / 1024, 1) for k, v in rss_last.items()},
        # Growth over the second half of the run: near zero means memory has levelled off.
        "rss_mb_second_half_growth": {k: round((c[-1][1] - c[len(c) // 2][1]) / 1024, 1) for k, c in watch.rss_curve.items() if c},
        # one sample a minute (every 12th, at 5 s apart), to see whether memory levels off
        "rss_mb_by_minute": {k: [round(kb / 1024) for _, kb in c[::12]] for k, c in watch.rss_curve.items()},
    }
