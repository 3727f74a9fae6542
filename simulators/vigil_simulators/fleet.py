"""Drive a cohort's wearables on a (possibly accelerated) clock and hand out their batches.

`FleetClock` maps wall time to simulated time. At a speed above 1 the simulation starts in the
past and catches up with now at the end, so no sample is ever stamped in the future.
`Fleet.batches_until(t)` yields every batch the devices would have published by sim time t,
with injected faults, in time order: the same seed and start always give the same sequence.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from vigil.shell.contract.topics import status_topic, vitals_topic
from vigil_simulators.cohort import CohortPlan
from vigil_simulators.faults import FAULTS, corrupt
from vigil_simulators.physiology import SimulatedWearable, iso


@dataclass(frozen=True, slots=True)
class FleetClock:
    wall_start: float
    sim_start: float
    speed: float  # simulated seconds per wall second

    @staticmethod
    def ending_now(wall_now: float, wall_duration_s: float, speed: float) -> "FleetClock":
        """A clock that reaches the present at the end of the run (never stamps the future)."""
        return FleetClock(wall_now, wall_now - wall_duration_s * max(speed - 1.0, 0.0), speed)

    def sim_time(self, wall: float) -> float:
        return self.sim_start + (wall - self.wall_start) * self.speed

    def wall_time(self, sim: float) -> float:
        return self.wall_start + (sim - self.sim_start) / self.speed


@dataclass(slots=True)
class Outgoing:
    """One MQTT message the fleet wants to send."""

    topic: str
    payload: bytes
    retain: bool = False
    device_id: str = ""
    sample_count: int = 0
    fault: str | None = None
    sim_t: float = 0.0


@dataclass(slots=True)
class FleetCounts:
    batches: int = 0
    samples: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    status: int = 0


class Fleet:
    def __init__(
        self,
        plan: CohortPlan,
        rate_hz: float,
        batch_size: int = 4,
        bad_payload_rate: float = 0.0,
        faults: tuple[str, ...] = tuple(FAULTS),
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate must be positive")
        self.plan = plan
        self.period = 1.0 / rate_hz
        self.batch_size = max(1, batch_size)
        self.bad_payload_rate = bad_payload_rate
        self.faults = faults
        self.wearables: list[SimulatedWearable] = plan.wearables()
        self.buffers: dict[str, list[dict[str, object]]] = {w.device_id: [] for w in self.wearables}
        self.online: dict[str, bool] = {w.device_id: True for w in self.wearables}
        self.fault_rng = random.Random(f"{plan.seed}:faults")
        self.tick = 0
        self.counts = FleetCounts()

    def greetings(self) -> list[Outgoing]:
        """Retained 'online' status of every device, sent at start."""
        return [self._status(w, "online", self.plan.start_t) for w in self.wearables]

    def farewells(self, sim_t: float) -> list[Outgoing]:
        """Flush partial batches and mark every device offline at the end of a run."""
        out = [m for w in self.wearables if self.buffers[w.device_id] for m in self._flush(w)]
        out += [self._status(w, "offline", sim_t) for w in self.wearables]
        return out

    def _status(self, w: SimulatedWearable, state: str, t: float) -> Outgoing:
        self.counts.status += 1
        body = {"v": 1, "device_id": w.device_id, "state": state, "ts": iso(t), "battery_pct": round(w.battery, 1)}
        return Outgoing(status_topic(w.device_id), json.dumps(body, separators=(",", ":")).encode(), True, w.device_id)

    def _flush(self, w: SimulatedWearable) -> list[Outgoing]:
        samples = self.buffers[w.device_id]
        self.buffers[w.device_id] = []
        batch = {"v": 1, "device_id": w.device_id, "samples": samples}
        self.counts.batches += 1
        self.counts.samples += len(samples)
        sim_t = w.last_t
        if self.bad_payload_rate and self.fault_rng.random() < self.bad_payload_rate:
            fault = self.faults[self.fault_rng.randrange(len(self.faults))]
            topic, payload = corrupt(fault, batch, self.fault_rng)
            self.counts.faults[fault] = self.counts.faults.get(fault, 0) + 1
            bad = Outgoing(topic, payload, device_id=w.device_id, fault=fault, sim_t=sim_t)
            if fault in ("duplicate_batch", "unknown_device"):
                # The good batch goes out too; the fault is an extra message after it.
                return [self._good(w, batch, sim_t), bad]
            bad.sample_count = len(samples)
            return [bad]
        return [self._good(w, batch, sim_t)]

    @staticmethod
    def _good(w: SimulatedWearable, batch: dict, sim_t: float) -> Outgoing:
        payload = json.dumps(batch, separators=(",", ":")).encode()
        return Outgoing(vitals_topic(w.device_id), payload, device_id=w.device_id,
                        sample_count=len(batch["samples"]), sim_t=sim_t)

    def batches_until(self, sim_t: float) -> Iterator[Outgoing]:
        """Everything the fleet publishes up to simulated time `sim_t`, in order."""
        start = self.plan.start_t
        while start + self.tick * self.period <= sim_t:
            base_t = start + self.tick * self.period
            self.tick += 1
            for index, w in enumerate(self.wearables):
                # Devices are not in lockstep: each is offset by a fixed fraction of the period.
                t = base_t + self.period * (index % 97) / 97.0
                sample = w.sample(t)
                was_online = self.online[w.device_id]
                if sample is None:
                    if was_online:
                        self.online[w.device_id] = False
                        if self.buffers[w.device_id]:
                            yield from self._flush(w)
                        yield self._status(w, "offline", t)
                    continue
                if not was_online:
                    self.online[w.device_id] = True
                    yield self._status(w, "online", t)
                buffer = self.buffers[w.device_id]
                buffer.append(sample)
                if len(buffer) >= self.batch_size:
                    yield from self._flush(w)
