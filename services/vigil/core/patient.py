"""PatientMonitor: everything Vigil knows about one patient's stream, and what it decides.

`observe(reading)` and `tick(now)` are the only ways time moves forward. Both return the events
they caused; the caller decides where those go. State is small (a few kB a patient) and made of
plain attributes, so a runtime can snapshot it (Faust table, SQLite) and restore it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vigil.core.coverage import (
    COVERED_BY, DEFAULT_COVERAGE, NOT_MONITORED, OFFLINE, SILENT, Coverage, CoverageLimits, Verdict, judge,
)
from vigil.core.cursor import ADOPTED, LATE as PLACED_LATE, RECENT_SEQS, DeviceCursor
from vigil.core.events import Alert, AlertRaised, Event, ReadingRejected
from vigil.core.model_rules import (
    DEFAULT_MODEL_THRESHOLDS,
    MODEL_RULES,
    ModelScores,
    ModelThresholds,
    anomaly_outcome,
    risk_outcome,
)
from vigil.core.news2 import News2Score, score_news2_values
from vigil.core.policy import RuleState, clear_alert, raise_alert, step_rule
from vigil.core.profile import DEFAULT_CONTEXT, ClinicalContext
from vigil.core.quality import (
    DEFAULT_QUALITY,
    LATE,
    OFF_SKIN,
    UNTRUSTED_OPTICAL,
    QualityLimits,
    assess_quality,
)
from vigil.core.reading import VITAL_NAMES, Reading
from vigil.core.saved_state import restore
from vigil.core.rules import DEFAULT_THRESHOLDS, RULES, AlertThresholds, Finding, VitalSigns
from vigil.core.vital_track import FAST_TAU_S, POPULATION_PRIOR, SLOW_TAU_S, VitalTrack

# How long a last-known value stays usable, in seconds. Past this age a vital is 'not observed'.
MAX_AGE_S: dict[str, float] = {"hr": 600, "spo2": 600, "rr": 900, "temp": 3600, "sbp": 6 * 3600, "dbp": 6 * 3600}
MANUAL_MAX_AGE_S = 12 * 3600.0
ACTIVITY_TAU_S = 120.0
# A linear trend of s per hour leaves the fast EWMA ahead of the slow one by s * (slow tau - fast tau).
TREND_SCALE = 3600.0 / (SLOW_TAU_S - FAST_TAU_S)


@dataclass(slots=True)
class Assessment:
    """What the core made of one reading."""

    reading: Reading
    accepted: bool
    flags: tuple[str, ...] = ()
    news2: News2Score | None = None
    events: list[Event] = field(default_factory=list)


class PatientMonitor:
    __slots__ = (
        "patient_id", "context", "thresholds", "quality",
        "tracks", "devices", "last_seen_t", "battery", "battery_t",
        "on_oxygen", "on_oxygen_t", "acvpu", "acvpu_t", "activity", "activity_t",
        "last_hr_raw", "last_spo2_raw", "repeats", "untrusted_since", "untrusted_t",
        "rules", "offline", "last_news2", "suppressed", "coverage", "coverage_limits", "not_monitored",
    )

    def __init__(
        self,
        patient_id: str,
        context: ClinicalContext = DEFAULT_CONTEXT,
        thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
        quality: QualityLimits = DEFAULT_QUALITY,
        coverage: CoverageLimits = DEFAULT_COVERAGE,
    ) -> None:
        self.patient_id = patient_id
        self.context = context
        self.thresholds = thresholds
        self.quality = quality
        self.tracks: dict[str, VitalTrack] = {}
        for name in VITAL_NAMES:
            mean, sd = POPULATION_PRIOR[name]
            usual = context.usual_ranges.get(name)
            if usual is not None:
                mean, sd = usual.centre, max((usual.high - usual.low) / 4, 1e-3)
            self.tracks[name] = VitalTrack(mean, sd)
        self.devices: dict[str, DeviceCursor] = {}
        self.last_seen_t: float | None = None
        self.battery: float | None = None
        self.battery_t = 0.0
        self.on_oxygen: bool | None = None
        self.on_oxygen_t = -math.inf
        self.acvpu: str | None = None
        self.acvpu_t = -math.inf
        self.activity = 0.0
        self.activity_t: float | None = None
        self.last_hr_raw: float | None = None
        self.last_spo2_raw: float | None = None
        self.repeats = 0
        self.untrusted_since: float | None = None
        self.untrusted_t = 0.0
        self.rules: dict[str, RuleState] = {spec.kind: RuleState() for spec in (*RULES, *MODEL_RULES)}
        self.offline = RuleState()
        self.last_news2: News2Score | None = None
        self.suppressed = 0
        self.coverage = Coverage()
        self.coverage_limits = coverage
        self.not_monitored = RuleState()

    def __setstate__(self, state: object) -> None:
        """Unpickle, also a state pickled before issue 13 (a Faust changelog): coverage starts empty."""
        restore(self, state)
        if not hasattr(self, "coverage"):
            self.coverage, self.coverage_limits, self.not_monitored = Coverage(), DEFAULT_COVERAGE, RuleState()

    # -- reading path -------------------------------------------------------------------------

    def observe(self, r: Reading) -> Assessment:
        t = r.t
        cursor = self.devices.get(r.device_id)
        if cursor is None:
            cursor = self.devices[r.device_id] = DeviceCursor()
        refusal = cursor.check(r.seq)
        if refusal is not None:
            detail = f"seq {r.seq} after seq {cursor.last_seq} from device {r.device_id}"
            rejected = ReadingRejected(self.patient_id, r.device_id, r.seq, t, refusal, detail)
            return Assessment(r, False, events=[rejected])
        placed = cursor.place(r.seq, t)
        if placed == PLACED_LATE:
            # Kept (the series must hold every acknowledged reading) but not assessed: the
            # patient's state has moved past it, and rules only step forward in time.
            cursor.remember(r.seq)
            return Assessment(r, True, flags=(LATE,))
        if placed != ADOPTED:
            cursor.accept(r.seq, t)
        else:
            # The newest sample was a stray (core.cursor): its time no longer counts as the patient's.
            self.last_seen_t = max(c.last_t for c in self.devices.values())

        events: list[Event] = []
        gap = None if self.last_seen_t is None else t - self.last_seen_t
        if self.last_seen_t is None or t > self.last_seen_t:
            self.last_seen_t = t
        if self.offline.open is not None:
            events.append(clear_alert(self.offline, t))

        flags, optical_ok = self._track(r, t, gap)
        signs = self.vital_signs(t)
        news2 = signs.news2
        self.last_news2 = news2
        stable = self._step_rules(signs, t, events)
        if optical_ok and stable and (news2 is None or news2.score <= 2):
            self._learn_baseline(r, t)
        return Assessment(r, True, flags, news2, events)

    def _track(self, r: Reading, t: float, gap: float | None) -> tuple[tuple[str, ...], bool]:
        """Judge the sample's signal quality and feed what is trusted to the vital tracks and the
        patient's context (activity, battery, oxygen, consciousness). Returns (flags, optical_ok)."""
        hr, spo2 = r.hr, r.spo2
        if hr is not None and hr == self.last_hr_raw and spo2 == self.last_spo2_raw:
            self.repeats += 1
        else:
            self.repeats = 0
        self.last_hr_raw, self.last_spo2_raw = hr, spo2
        tracks = self.tracks
        hr_track = tracks["hr"]
        recent = hr_track.recent
        hr_median = sorted(recent)[len(recent) // 2] if recent else None
        flags = assess_quality(
            hr=hr, spo2=spo2, rr=r.rr, accel=r.accel, contact=r.contact, battery=r.battery,
            hr_median=hr_median, repeats=self.repeats, gap_s=gap, limits=self.quality,
        )
        optical_ok = not (flags and UNTRUSTED_OPTICAL.intersection(flags))
        if optical_ok:
            if hr is not None:
                hr_track.add(hr, t)
            if spo2 is not None:
                tracks["spo2"].add(spo2, t)
            if r.rr is not None:
                tracks["rr"].add(r.rr, t)
            if hr is not None or spo2 is not None:
                self.untrusted_since = None
                self.untrusted_t = t
        elif hr is not None or spo2 is not None or r.contact is False:
            if self.untrusted_since is None:
                self.untrusted_since = t
            self.untrusted_t = t
        if r.temp is not None and OFF_SKIN not in flags:
            tracks["temp"].add(r.temp, t)
        if r.sbp is not None and r.dbp is not None:
            tracks["sbp"].add(r.sbp, t)
            tracks["dbp"].add(r.dbp, t)
        if r.accel is not None:
            if self.activity_t is None:
                self.activity = r.accel
            elif t > self.activity_t:
                self.activity += (1.0 - math.exp(-(t - self.activity_t) / ACTIVITY_TAU_S)) * (r.accel - self.activity)
            self.activity_t = t
        if r.battery is not None:
            self.battery, self.battery_t = r.battery, t
        if r.on_oxygen is not None:
            self.on_oxygen, self.on_oxygen_t = r.on_oxygen, t
        if r.acvpu is not None:
            self.acvpu, self.acvpu_t = r.acvpu, t
        return flags, optical_ok

    def _step_rules(self, signs: VitalSigns, t: float, events: list[Event]) -> bool:
        """Step every alert rule on the current vital signs, appending what they raise or clear.
        Returns whether the patient is stable: no clinical or model alert pending or open."""
        news2 = signs.news2
        context, thresholds, pid = self.context, self.thresholds, self.patient_id
        states = self.rules
        any_clinical_open = False
        for spec in RULES:
            state = states[spec.kind]
            event = step_rule(spec, state, spec.evaluate(signs, thresholds, context), t, pid, news2)
            if event is not None:
                if isinstance(event, AlertRaised):
                    self._annotate(event.alert, state.open)
                events.append(event)
            if spec.category == "clinical" and (state.pending_since is not None or state.open is not None):
                any_clinical_open = True
        if not any_clinical_open:
            # A pending or open model alert also means 'not stable': keep it out of the baseline.
            for spec in MODEL_RULES:
                state = states[spec.kind]
                if state.pending_since is not None or state.open is not None:
                    any_clinical_open = True
        return not any_clinical_open

    def _learn_baseline(self, r: Reading, t: float) -> None:
        tracks = self.tracks
        if r.hr is not None and self.activity < self.thresholds.rest_activity_g:
            tracks["hr"].learn_baseline(r.hr, t)
        if r.spo2 is not None:
            tracks["spo2"].learn_baseline(r.spo2, t)
        if r.rr is not None:
            tracks["rr"].learn_baseline(r.rr, t)
        if r.temp is not None:
            tracks["temp"].learn_baseline(r.temp, t)
        if r.sbp is not None and r.dbp is not None:
            tracks["sbp"].learn_baseline(r.sbp, t)
            tracks["dbp"].learn_baseline(r.dbp, t)

    def vital_signs(self, t: float) -> VitalSigns:
        """The current picture: last-known trusted values within their maximum age, and NEWS2."""
        tracks = self.tracks
        hr_track, spo2_track, rr_track, temp_track = tracks["hr"], tracks["spo2"], tracks["rr"], tracks["temp"]
        sbp_track, dbp_track = tracks["sbp"], tracks["dbp"]
        hr = hr_track.current(t, MAX_AGE_S["hr"])
        spo2 = spo2_track.current(t, MAX_AGE_S["spo2"])
        rr = rr_track.current(t, MAX_AGE_S["rr"])
        temp = temp_track.current(t, MAX_AGE_S["temp"])
        sbp = sbp_track.last_value if t - sbp_track.last_t <= MAX_AGE_S["sbp"] else None
        dbp = dbp_track.last_value if sbp is not None else None
        on_oxygen = self.on_oxygen if t - self.on_oxygen_t <= MANUAL_MAX_AGE_S else self.context.on_oxygen
        acvpu = self.acvpu if t - self.acvpu_t <= MANUAL_MAX_AGE_S else None
        news2 = score_news2_values(rr, spo2, on_oxygen, sbp, hr, acvpu, temp, self.context.spo2_scale)
        return VitalSigns(  # positionally: the field order of VitalSigns
            t, hr, hr_track.last_t, hr_track.variability, spo2, spo2_track.last_t, rr, rr_track.last_t,
            temp, temp_track.last_t, sbp, dbp, sbp_track.last_t, self.activity, self.battery, self.battery_t,
            0.0 if self.untrusted_since is None else t - self.untrusted_since, self.untrusted_t, news2,
        )

    # -- model path ---------------------------------------------------------------------------

    def apply_model_scores(self, scores: ModelScores, thresholds: ModelThresholds = DEFAULT_MODEL_THRESHOLDS) -> list[Event]:
        """Feed the learned models' scores through the same alert policy as every rule.

        Scores count as untrusted (neither fire nor clear) while the optical signal is untrusted
        or the heart rate is not observed. A raised alert carries the model version and the
        features that drove it.
        """
        t = scores.t
        hr_track = self.tracks["hr"]
        trusted = self.untrusted_since is None and t - hr_track.last_t <= MAX_AGE_S["hr"]
        events: list[Event] = []
        news2 = self.last_news2
        for spec, outcome in zip(MODEL_RULES, (anomaly_outcome(scores.anomaly, trusted, t, thresholds),
                                               risk_outcome(scores.risk, trusted, t, thresholds))):
            state = self.rules[spec.kind]
            event = step_rule(spec, state, outcome, t, self.patient_id, news2)
            if event is None:
                continue
            if isinstance(event, AlertRaised):
                self._annotate(event.alert, state.open)
                for alert in (event.alert, state.open):
                    if alert is not None:
                        alert.model_version = scores.model_version
                        alert.contributors = [dict(c) for c in scores.contributors]
            events.append(event)
        return events

    # -- clock path ---------------------------------------------------------------------------

    def _annotate(self, *alerts: Alert | None) -> None:
        """Give a raised alert its context: each observed vital's baseline and trend per hour."""
        baselines: dict[str, float] = {}
        trends: dict[str, float] = {}
        for name, track in self.tracks.items():
            if track.count:
                baselines[name] = round(track.baseline_mean, 1)
                trends[name] = round((track.fast - track.slow) * TREND_SCALE, 1)
        for alert in alerts:
            if alert is not None:
                alert.baselines = dict(baselines)
                alert.trends = dict(trends)

    def tick(self, now: float, silence: bool = True) -> list[Event]:
        """Advance timers: a device gone silent, or not monitored for another cause, raises a
        technical alert once its cause is due (core.coverage). `silence` False: the caller knows
        the patient is not silent (a worker replaying a backlog), so silence raises nothing."""
        self.coverage.watch(now)
        events: list[Event] = []
        self._cover(now, events, silence)
        return events

    # -- coverage: what the shell heard, on the wall clock ------------------------------------

    def heard(self, received_at: float, newest_t: float) -> list[Event]:
        """A message with assessed samples arrived at `received_at` (its newest sample at `newest_t`)."""
        self.coverage.heard(received_at, newest_t, self.coverage_limits.clock_off_s)
        events: list[Event] = []
        if self.not_monitored.open is not None:
            self._cover(received_at, events, False)
        return events

    def refused(self, received_at: float, reason: str, count: int = 1) -> list[Event]:
        """Samples of this patient's device refused (or kept late, not assessed) at `received_at`."""
        self.coverage.refused(received_at, reason, count)
        events: list[Event] = []
        self._cover(received_at, events, False)  # silence is the timer's (tick) to judge
        return events

    def device_status(self, state: str, t: float) -> list[Event]:
        """A device's retained status: `offline` (its last will) starts the fast path."""
        if state == "offline":
            self.coverage.went_offline(t)
        else:
            self.coverage.came_online()
        events: list[Event] = []
        self._cover(t, events, False)
        return events

    def verdict(self, now: float) -> Verdict:
        """Monitored, or not with its cause (core.coverage.judge)."""
        tracks = self.tracks
        return judge(self.coverage, now, self.coverage_limits, last_seen_t=self.last_seen_t,
                     stale_after_s=self.quality.stale_after_s, untrusted_since=self.untrusted_since,
                     untrusted_after_s=self.thresholds.poor_signal_after_s,
                     vital_t={name: tracks[name].last_t for name in self.coverage_limits.expected_vitals})

    def covering_alert(self, verdict: Verdict) -> Alert | None:
        """The open technical alert that covers this verdict's cause, if any."""
        kind = COVERED_BY.get(verdict.cause)
        if kind == NOT_MONITORED:
            return self.not_monitored.open
        if kind == "device_offline":
            return self.offline.open
        return None if kind is None else self.rules[kind].open

    def _cover(self, now: float, events: list[Event], silence: bool = True) -> None:
        verdict = self.verdict(now)
        cause, due = verdict.cause, verdict.due
        if self.offline.open is None and ((cause == SILENT and silence) or cause == OFFLINE) and now >= (due or now):
            values: dict[str, float | int | str | bool] = {"cause": cause}
            if cause == SILENT:
                stale_after = self.quality.stale_after_s
                values["silent_for_min"] = round((now - (verdict.since or now)) / 60, 1)
                finding = Finding("low", values, f"no readings for more than {stale_after / 60:g} min")
                onset = self.last_seen_t if self.last_seen_t is not None else verdict.since or now
            else:
                finding = Finding("low", values, verdict.words)
                onset = verdict.since or now
            events.append(raise_alert(
                self.offline, patient_id=self.patient_id, kind="device_offline", category="technical",
                finding=finding, onset_t=onset, t=now, news2=None,
            ))
        state = self.not_monitored
        mine = COVERED_BY.get(cause) == NOT_MONITORED
        if state.open is not None and not (mine and state.open.values.get("cause") == cause):
            events.append(clear_alert(state, now))
        if state.open is None and mine and due is not None and now >= due:
            finding = Finding("medium", {"cause": cause, "reason": verdict.reason}, verdict.words)
            events.append(raise_alert(
                state, patient_id=self.patient_id, kind=NOT_MONITORED, category="technical",
                finding=finding, onset_t=verdict.since if verdict.since is not None else now, t=now, news2=None,
            ))

    def open_alerts(self) -> list[Alert]:
        alerts = [state.open for state in self.rules.values() if state.open is not None]
        if self.offline.open is not None:
            alerts.append(self.offline.open)
        if self.not_monitored.open is not None:
            alerts.append(self.not_monitored.open)
        return alerts
