"""kill -9 of `vigil run` (embedded broker, a roster) at random moments under full load, ten times,
each followed by a restart; then an exact count: every sample whose message was PUBACKed is stored
exactly once in SQLite, and no alert is raised twice nor any notification queued twice.

The publisher is a paho client at QoS 1, publishing flat out; paho's on_publish fires on PUBACK,
which is what "acknowledged" means here. After each kill it starts again from its first message
that was not acknowledged, as a device with a persistent outbox would: messages that were stored
but not yet acknowledged arrive twice, and must still be stored once.

The attack this guards against: `CRASH_ACK_ON_RECEIPT=1` runs `vigil run` with
VIGIL_MQTT_ACK_AFTER_STORE=false (amqtt's PUBACK on receipt), and the test fails: acknowledged
samples are lost (about 6,900 samples after three kills, 2026-12-03).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, func, select

from vigil.shell.contract.device import VitalsBatch
from vigil.shell.stores.tables import alert_events, outbox, readings
from vigil.tools.ports import free_port
from vigil_simulators.cohort import plan_cohort
from vigil_simulators.fleet import Fleet

pytestmark = pytest.mark.slow
KILLS = 10
MESSAGES = 15_000
PATIENTS = 100
SAMPLES_PER_MESSAGE = 10


def stream() -> tuple[list[tuple[str, bytes]], dict]:
    """Vitals messages of a simulated ward, oldest first, and its roster (no faulty payloads)."""
    rate = 1 / 15
    sim_s = MESSAGES * SAMPLES_PER_MESSAGE / PATIENTS / rate * 1.05
    start = time.time() - sim_s - 60
    plan = plan_cohort(PATIENTS, 23, start, sim_s)
    fleet = Fleet(plan, rate, SAMPLES_PER_MESSAGE, 0.0, faults=())
    out = [(m.topic, m.payload) for m in fleet.batches_until(start + sim_s) if m.topic.endswith("/vitals")]
    return out[:MESSAGES], plan.roster()


class VigilProcess:
    """`vigil run` as a subprocess on fixed ports and one data directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.env = dict(os.environ, VIGIL_MQTT_PORT=str(self.mqtt_port), VIGIL_HTTP_PORT=str(self.http_port),
                        VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_ROSTER=str(tmp_path / "roster.yaml"),
                        VIGIL_MODELS_ENABLED="false", VIGIL_LOG_LEVEL="WARNING",
                        # One publisher stands for the whole ward's devices (the development mode): this test
                        # is about durability; logins and the topic ACL are tests/attacks/test_mqtt_attacks.py.
                        VIGIL_MQTT_ALLOW_ANONYMOUS="1")
        if os.environ.get("CRASH_ACK_ON_RECEIPT"):  # the attack (tests/conftest.py drops VIGIL_* here)
            self.env["VIGIL_MQTT_ACK_AFTER_STORE"] = "false"
        self.log = open(tmp_path / "vigil.log", "a")  # noqa: SIM115
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "run"], env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while True:
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2).read())
                if health["mqtt"]["connected"]:
                    return
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"vigil run did not start (see {self.log.name})")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(60) == 0, f"vigil run did not stop cleanly (see {self.log.name})"


class Publisher:
    """Publishes messages[first:] flat out at QoS 1 and records which were acknowledged (PUBACK)."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], first: int) -> None:
        self.messages, self.first = messages, first
        self.by_mid: dict[int, int] = {}
        self.acked_mids: list[int] = []  # list.append: safe from paho's thread, no lock to deadlock on
        self.stopped = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"crash-pub-{time.time_ns()}")
        self.client.max_inflight_messages_set(1000)
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked_mids.append(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._publish, daemon=True)
        self.thread.start()

    def _publish(self) -> None:
        for index in range(self.first, len(self.messages)):
            if self.stopped.is_set():
                return
            topic, payload = self.messages[index]
            info = self.client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                return
            self.by_mid[info.mid] = index
            while len(self.by_mid) - len(self.acked_mids) > 1000 and not self.stopped.is_set():
                time.sleep(0.001)  # the in-flight window: paho would queue the rest

    def acked(self) -> set[int]:
        return {self.by_mid[mid] for mid in list(self.acked_mids) if mid in self.by_mid}

    def stop(self) -> set[int]:
        time.sleep(0.2)  # PUBACKs already on the wire reach paho
        self.stopped.set()
        self.thread.join(10)
        self.client.loop_stop()
        self.client.disconnect()
        return self.acked()


def first_not_in(acked: set[int], start: int, end: int) -> int:
    index = start
    while index < end and index in acked:
        index += 1
    return index


def test_kill_9_under_full_load_loses_no_acknowledged_sample_and_duplicates_nothing(tmp_path):
    messages, roster = stream()
    (tmp_path / "roster.yaml").write_text(json.dumps(roster))
    vigil = VigilProcess(tmp_path)
    chance = random.Random(os.environ.get("VIGIL_CRASH_SEED", time.time_ns()))
    acked: set[int] = set()
    first = 0
    in_flight_at_kills = []  # sent and not acknowledged when the process died
    for _ in range(KILLS):
        vigil.start()
        publisher = Publisher(vigil.mqtt_port, messages, first)
        time.sleep(chance.uniform(0.2, 1.5))
        vigil.kill()
        acknowledged = publisher.stop()
        in_flight_at_kills.append(len(publisher.by_mid) - len(acknowledged))
        acked |= acknowledged
        first = first_not_in(acked, first, len(messages))
    assert first < len(messages), "the load ran out before the last kill"
    assert sum(n > 0 for n in in_flight_at_kills) >= KILLS // 2, f"kills under load: {in_flight_at_kills}"
    vigil.start()
    publisher = Publisher(vigil.mqtt_port, messages, first)
    deadline = time.time() + 90
    while first_not_in(acked | publisher.acked(), first, len(messages)) < len(messages) and time.time() < deadline:
        time.sleep(0.2)
    acked |= publisher.stop()
    vigil.stop()
    assert len(acked) == len(messages), "every message acknowledged in the end"

    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'vigil.sqlite'}")
    with engine.connect() as conn:
        stored = conn.execute(select(readings.c.device_id, readings.c.seq)).all()
        raised_twice = conn.execute(select(alert_events.c.alert_id).where(alert_events.c.event == "raised")
                                    .group_by(alert_events.c.alert_id).having(func.count() > 1)).all()
        raised = conn.execute(select(func.count()).select_from(alert_events).where(alert_events.c.event == "raised")).scalar()
        queued_twice = conn.execute(select(outbox.c.incident_id, outbox.c.event, outbox.c.revision, outbox.c.recipient_id,
                                           outbox.c.channel).group_by(outbox.c.incident_id, outbox.c.event, outbox.c.revision,
                                                                      outbox.c.recipient_id, outbox.c.channel)
                                    .having(func.count() > 1)).all()
    engine.dispose()
    samples = {(batch.device_id, sample.seq) for batch in (VitalsBatch.model_validate_json(messages[i][1]) for i in acked)
               for sample in batch.samples}
    assert len(stored) == len(set(stored)), "no sample stored twice"
    assert samples - set(stored) == set(), "every acknowledged sample stored"
    assert len(stored) == len(samples) > MESSAGES * SAMPLES_PER_MESSAGE * 0.99  # all, and nothing else
    assert raised > 0 and raised_twice == [], "alerts raised, each once"
    assert queued_twice == [], "no notification queued twice"
