"""Wearables for the scaled coverage tests: real MQTT clients, each logged in as its own device
with its last will set, publishing a sample a second in small batches, whose output a test can
spoil one way at a time (a renamed field, a wrong clock, no SpO2, off the wrist, nothing at all)
or whose connection it can drop without a DISCONNECT, so that Mosquitto publishes the will.

The samples are steady and healthy (with a little noise: the same numbers many times in a row
would be a stuck sensor), so that any technical alert comes from the fault alone."""

from __future__ import annotations

import json
import random
import threading
import time

from vigil.shell.contract.topics import status_topic, vitals_topic
from vigil_simulators.physiology import iso
from vigil_simulators.publisher import connect

GOOD = "good"
QUIET = "quiet"  # connected, sends nothing (silence), or never sent anything (never seen)
DROPPED = "dropped"  # connection dropped without DISCONNECT: the broker published the will
RENAMED = "renamed_field"  # hr_bpm sent as heart_rate: every payload refused (schema)
CLOCK_1970 = "clock_1970"  # the clock reset after a battery change: every sample refused (stale)
CLOCK_AHEAD = "clock_ahead"  # three hours ahead: every sample refused (future)
CLOCK_BEHIND = "clock_behind"  # an hour behind: accepted, but the device's time is wrong
NO_SPO2 = "no_spo2"  # the oximeter stopped: heart rate still arrives
OFF_WRIST = "off_wrist"  # skin_contact false: untrusted
CRISIS = "crisis"  # good data with a hypertensive crisis in the cuff readings (clinical)


class Wearable:
    """One device: its own credentials, its own will, its own `seq`."""

    def __init__(self, device_id: str, mqtt_url: str, password: str, run_id: str, seed: int) -> None:
        self.device_id = device_id
        self.url = mqtt_url
        self.password = password
        self.client_id = f"dev-{device_id}-{run_id}"
        self.mode = GOOD
        self.seq = 0
        self.rng = random.Random(seed)
        self.client = None
        self.fault_t: float | None = None
        self.once: str | None = None  # the next message only is spoiled this way

    def log_in(self) -> None:
        self.client = connect(self.url, self.client_id, username=self.device_id, password=self.password,
                              will_device=self.device_id)
        deadline = time.time() + 10
        while not self.client.is_connected():
            if time.time() > deadline:
                raise AssertionError(f"{self.device_id} could not log in")
            time.sleep(0.05)
        self.status("online")

    def status(self, state: str) -> None:
        body = {"v": 1, "device_id": self.device_id, "state": state, "ts": iso(time.time())}
        self.client.publish(status_topic(self.device_id), json.dumps(body), qos=1, retain=True).wait_for_publish(5)

    def drop_connection(self) -> None:
        """The radio goes: no DISCONNECT, so the broker publishes the device's last will."""
        self.mode = DROPPED
        client, self.client = self.client, None
        client.loop_stop()
        client.socket().close()

    def sample(self, t: float, device_t: float, mode: str) -> dict:
        """A healthy sample at `device_t`, spoiled as `mode` says."""
        rng = self.rng
        self.seq += 1
        s: dict = {"ts": iso(device_t), "seq": self.seq, "hr_bpm": float(rng.randint(68, 78)),
                   "spo2_pct": float(rng.randint(96, 99)), "rr_per_min": float(rng.randint(13, 16)),
                   "temp_c": round(36.6 + rng.uniform(-0.1, 0.1), 2), "accel_g": round(rng.uniform(0.01, 0.05), 3),
                   "battery_pct": 80.0, "skin_contact": True}
        if mode == RENAMED:
            s["heart_rate"] = s.pop("hr_bpm")
        elif mode == NO_SPO2:
            s.pop("spo2_pct")
        elif mode == OFF_WRIST:
            s["skin_contact"] = False
        elif mode == CRISIS:
            s["sbp_mmhg"], s["dbp_mmhg"] = 204.0, 126.0
        return s

    def device_time(self, t: float) -> float:
        if self.mode == CLOCK_1970:
            return 86400.0 + t - (self.fault_t or t)
        if self.mode == CLOCK_AHEAD:
            return t + 3 * 3600
        if self.mode == CLOCK_BEHIND:
            return t - 3600
        return t

    def publish(self, samples: list[dict]) -> None:
        body = {"v": 1, "device_id": self.device_id, "samples": samples}
        self.client.publish(vitals_topic(self.device_id), json.dumps(body), qos=1).wait_for_publish(5)

    def publish_now(self, samples_per_message: int = 2) -> None:
        """One message of the last `samples_per_message` seconds, as the current mode makes it."""
        if self.mode in (QUIET, DROPPED) or self.client is None:
            return
        now = time.time()
        mode, self.once = self.once or self.mode, None
        times = [now - (samples_per_message - 1 - i) for i in range(samples_per_message)]
        self.publish([self.sample(t, self.device_time(t), mode) for t in times])

    def clear_status(self) -> None:
        """Leave nothing retained on the shared broker."""
        client = self.client or connect(self.url, self.client_id, username=self.device_id, password=self.password)
        client.publish(status_topic(self.device_id), b"", qos=1, retain=True).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        self.client = None


class Fleet:
    """Every wearable publishes a message every `period_s`, from one thread."""

    def __init__(self, wearables: list[Wearable], period_s: float = 2.0) -> None:
        self.wearables = wearables
        self.period_s = period_s
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.lock = threading.Lock()  # a mode change and a publish never interleave
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                for w in self.wearables:
                    try:
                        w.publish_now(int(self.period_s))
                    except Exception as exc:  # recorded: the test reports it
                        self.errors.append(f"{w.device_id}: {exc!r}")
            self.stop.wait(self.period_s)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
