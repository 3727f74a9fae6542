"""A simulated patient wearing a wrist device: plausible vitals, sample by sample.

Each patient has their own resting values. On top of them: a circadian rhythm (lowest around
04:00), heart and breathing rates driven by activity (a rest/light/walk Markov chain, mostly
rest at night), autocorrelated noise, occasional motion artefacts and dropouts, a slowly
draining battery, periodic cuff blood pressures and app check-ins. Scheduled scenarios bend
all of this. Everything is drawn from one `random.Random`, so a seed fixes the whole stream.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone

from vigil_simulators.scenarios import SCENARIOS, ScheduledEvent, effect

# (mean accel g, heart-rate lift bpm, breathing lift /min, steps per second, mean minutes by day)
ACTIVITY = {
    "rest": (0.02, 0.0, 0.0, 0.0, 40.0),
    "light": (0.10, 12.0, 2.0, 0.3, 10.0),
    "walk": (0.28, 28.0, 5.0, 1.6, 8.0),
}
NEXT_ACTIVITY = {"rest": ("light", "walk"), "light": ("rest", "walk"), "walk": ("rest", "light")}
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class PatientTraits:
    """Resting values and clinical context of one simulated patient."""

    hr: float
    spo2: float
    rr: float
    temp: float
    sbp: float
    dbp: float
    spo2_scale: int  # 2: COPD with a prescribed 88-92 % target
    on_oxygen: bool

    @staticmethod
    def draw(rng: random.Random) -> "PatientTraits":
        copd = rng.random() < 0.1
        athlete = not copd and rng.random() < 0.05
        hr = rng.gauss(52, 4) if athlete else rng.gauss(72, 7)
        spo2 = min(92.0, max(88.5, rng.gauss(90.5, 1.0))) if copd else min(99.0, rng.gauss(97.2, 0.9))
        sbp = rng.gauss(124, 11)
        return PatientTraits(
            hr=hr, spo2=spo2, rr=rng.gauss(18 if copd else 15, 1.5), temp=rng.gauss(36.7, 0.2),
            sbp=sbp, dbp=sbp * 0.62 + rng.gauss(0, 4), spo2_scale=2 if copd else 1, on_oxygen=False,
        )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


class SimulatedWearable:
    """The device on one patient's wrist. `sample(t)` gives the contract's sample dict, or None
    when the device is silent. Call it with increasing t."""

    def __init__(
        self,
        patient_id: str,
        device_id: str,
        traits: PatientTraits,
        events: list[ScheduledEvent],
        rng: random.Random,
        start_t: float,
        cuff_every_s: float = 4 * 3600,
        checkin_every_s: float = 6 * 3600,
    ) -> None:
        self.patient_id = patient_id
        self.device_id = device_id
        self.traits = traits
        self.events = sorted(events, key=lambda e: e.onset_t)
        self.rng = rng
        self.seq = 0
        self.battery = rng.uniform(60, 100)
        self.activity = "rest"
        self.activity_lift = 0.0  # heart rate follows activity with a lag
        self.noise = {"hr": 0.0, "spo2": 0.0, "rr": 0.0, "temp": 0.0}
        self.last_t = start_t
        self.cuff_every_s = cuff_every_s
        self.next_cuff_t = start_t + rng.uniform(0, cuff_every_s)
        self.checkin_every_s = checkin_every_s
        self.next_checkin_t = start_t + rng.uniform(0, checkin_every_s)
        self.online = True
        self.strayed = False  # the stray_sample fault sends its one stray sample once

    def active_events(self, t: float) -> list[ScheduledEvent]:
        return [e for e in self.events if e.onset_t <= t < e.end_t]

    def _ar(self, name: str, sd: float, dt: float, tau: float = 300.0) -> float:
        """Ornstein-Uhlenbeck noise with stationary sd and time constant tau."""
        a = math.exp(-dt / tau)
        self.noise[name] = a * self.noise[name] + math.sqrt(1 - a * a) * self.rng.gauss(0, sd)
        return self.noise[name]

    def _step_activity(self, t: float, dt: float) -> None:
        hour = (t % DAY) / 3600
        night = hour < 6.5 or hour >= 22.5
        mean_min = ACTIVITY[self.activity][4]
        if self.activity == "rest" and night:
            mean_min = 360.0
        if self.rng.random() < 1 - math.exp(-dt / (mean_min * 60)):
            choices = NEXT_ACTIVITY[self.activity]
            if night:
                self.activity = "rest"
            else:
                self.activity = choices[0] if self.rng.random() < 0.65 else choices[1]
        target = ACTIVITY[self.activity][1]
        self.activity_lift += (1 - math.exp(-dt / 60.0)) * (target - self.activity_lift)

    def sample(self, t: float) -> dict[str, object] | None:
        rng, tr = self.rng, self.traits
        dt = max(t - self.last_t, 1e-3)
        self.last_t = t
        self._step_activity(t, dt)
        active = self.active_events(t)
        shift = {"hr": 0.0, "spo2": 0.0, "rr": 0.0, "temp": 0.0, "sbp": 0.0, "dbp": 0.0}
        irregular = 0.0
        artefact = silent = draining = False
        cuff_every = self.cuff_every_s
        acvpu = "A"
        for event in active:
            sc = SCENARIOS[event.scenario]
            k = effect(sc, t - event.onset_t)
            for name, delta in sc.shifts.items():
                shift[name] += k * delta
            irregular = max(irregular, k * sc.hr_irregularity_bpm)
            artefact |= sc.artefact
            silent |= sc.silent
            draining |= sc.drains_battery
            if sc.cuff_every_s:
                cuff_every = min(cuff_every, sc.cuff_every_s)
            if sc.acvpu_at_full and k >= 0.8:
                acvpu = sc.acvpu_at_full

        # Battery: slow drain; a patient charges it when low; a low-battery event drains it fast.
        if draining:
            self.battery = max(3.0, self.battery - dt * (90.0 / 1800.0))
        else:
            self.battery -= dt * 1.2 / 3600
            if self.battery < 25 or (self.battery < 8 and not draining):
                self.battery = 100.0
        if silent:
            self.online = False
            return None
        self.online = True

        hour = (t % DAY) / 3600
        circadian = -math.cos(2 * math.pi * (hour - 4) / 24)  # -1 at 04:00, +1 at 16:00
        accel_mean, _, rr_lift, steps_rate, _ = ACTIVITY[self.activity]
        hr = tr.hr + 4 * circadian + self.activity_lift + self._ar("hr", 3.0, dt) + shift["hr"]
        if irregular:
            hr += rng.gauss(0, irregular)
        spo2 = tr.spo2 + self._ar("spo2", 0.8, dt, 120) + shift["spo2"]
        rr = tr.rr + rr_lift * (self.activity_lift / 28.0) + self._ar("rr", 1.0, dt) + shift["rr"]
        temp = tr.temp + 0.25 * circadian + self._ar("temp", 0.08, dt, 900) + shift["temp"]
        accel = max(0.0, rng.gauss(accel_mean, accel_mean * 0.25 + 0.005))
        contact = True
        if artefact:
            accel = rng.uniform(0.6, 1.5)
            hr = rng.uniform(50, 190)
            spo2 = rng.uniform(75, 100)
            contact = rng.random() > 0.1
        elif self.activity == "walk" and rng.random() < 0.03:
            hr += rng.uniform(35, 60)  # the optical sensor locks onto cadence
            spo2 -= rng.uniform(3, 10)

        self.seq += 1
        sample: dict[str, object] = {"ts": iso(t), "seq": self.seq}
        if rng.random() >= 0.02:  # 2 % optical dropouts
            sample["hr_bpm"] = float(round(min(max(hr, 25.0), 250.0)))
            sample["spo2_pct"] = float(round(min(max(spo2, 60.0), 100.0)))
            sample["rr_per_min"] = round(min(max(rr, 4.0), 60.0), 1)
        sample["temp_c"] = round(min(max(temp, 33.0), 42.5), 2)
        sample["steps"] = min(1000, int(steps_rate * dt * rng.uniform(0.7, 1.3)))
        sample["accel_g"] = round(min(accel, 15.0), 3)
        sample["battery_pct"] = round(self.battery, 1)
        sample["skin_contact"] = contact
        if t >= self.next_cuff_t:
            self.next_cuff_t = t + cuff_every
            sbp = tr.sbp + 6 * circadian + shift["sbp"] + rng.gauss(0, 5)
            dbp = min(tr.dbp + 3 * circadian + shift["dbp"] + rng.gauss(0, 3), sbp - 15)
            sample["sbp_mmhg"], sample["dbp_mmhg"] = float(round(sbp)), float(round(dbp))
        elif cuff_every < self.cuff_every_s and self.next_cuff_t - t > cuff_every:
            self.next_cuff_t = t + cuff_every  # a scenario asks for more frequent cuff readings
        if t >= self.next_checkin_t:
            self.next_checkin_t = t + self.checkin_every_s
            sample["manual"] = {"on_oxygen": tr.on_oxygen, "acvpu": acvpu}
        self._spoil(sample, active, t)
        return sample

    def _spoil(self, sample: dict[str, object], active: list[ScheduledEvent], t: float) -> None:
        """Coverage faults (issue 13): the device's output goes wrong, the patient is fine."""
        for event in active:
            fault = SCENARIOS[event.scenario].fault
            if fault:
                self._spoil_one(sample, fault, t, event.onset_t)

    def _spoil_one(self, sample: dict[str, object], fault: str, t: float, onset_t: float) -> None:
        if fault == "clock_reset":
            sample["ts"] = iso(86400.0 + t - onset_t)
        elif fault == "renamed_field" and "hr_bpm" in sample:
            sample["heart_rate"] = sample.pop("hr_bpm")
        elif fault == "wrong_unit":
            sample["temp_c"] = round(float(sample["temp_c"]) * 9 / 5 + 32, 1)  # type: ignore[arg-type]
        elif fault == "no_spo2":
            sample.pop("spo2_pct", None)
        elif fault == "off_wrist":
            sample["skin_contact"] = False
        elif fault == "stray_sample" and not self.strayed:
            # One test sample with a time well ahead and a huge seq, then the device goes on.
            self.strayed = True
            sample["ts"], sample["seq"] = iso(t + 2 * 3600), 10**9
