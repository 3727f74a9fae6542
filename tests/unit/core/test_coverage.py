"""Monitoring coverage (core.coverage, through PatientMonitor): one test per cause, each asserting
the time from fault to technical alert and from recovery to its close; plus the attacks."""

from __future__ import annotations

from vigil.core.coverage import (
    CLOCK, MONITORED, NEVER_SEEN, NOT_MONITORED, OFFLINE, REJECTED, SILENT, UNTRUSTED, VITALS_MISSING,
    CoverageLimits, judge, Coverage,
)
from vigil.core.events import AlertCleared, AlertRaised
from vigil.core.patient import PatientMonitor
from vigil.core.quality import QualityLimits
from vigil.core.reading import Reading

T0 = 1_800_000_000.0
EVERY_S = 5.0  # a wearable's sample period in these tests
TICK_S = 1.0  # the embedded runtime's timer


def sample(t: float, seq: int, **vitals: object) -> Reading:
    values = {"hr": 70.0 + seq % 5, "spo2": 96.0 + seq % 3, "rr": 14.0, "accel": 0.01, "contact": True, **vitals}
    return Reading("pt-1", "wr-1", t, seq, **values)  # type: ignore[arg-type]


class Ward:
    """One patient, a wall clock and the shell's part (heard/refused/status), tick by tick."""

    def __init__(self, **limits: object) -> None:
        self.monitor = PatientMonitor("pt-1", quality=QualityLimits(stale_after_s=15 * 60.0),
                                      coverage=CoverageLimits(**limits))  # type: ignore[arg-type]
        self.now = T0
        self.seq = 0
        self.raised: list[tuple[float, AlertRaised]] = []
        self.cleared: list[tuple[float, AlertCleared]] = []

    def _keep(self, events: list) -> None:
        for event in events:
            if isinstance(event, AlertRaised):
                self.raised.append((self.now, event))
            elif isinstance(event, AlertCleared):
                self.cleared.append((self.now, event))

    def good(self, device_t: float | None = None, **vitals: object) -> None:
        self.seq += 1
        r = sample(self.now if device_t is None else device_t, self.seq, **vitals)
        assessment = self.monitor.observe(r)
        self._keep(assessment.events)
        if assessment.accepted and "late" not in assessment.flags:
            self._keep(self.monitor.heard(self.now, r.t))
        elif assessment.accepted:
            self._keep(self.monitor.refused(self.now, "late"))

    def refuse(self, reason: str) -> None:
        self._keep(self.monitor.refused(self.now, reason))

    def run(self, seconds: float, *, send: str | None = "good", **vitals: object) -> None:
        """`seconds` of wall time: a sample every EVERY_S (good, a refusal, or nothing), ticking every second."""
        end = self.now + seconds
        next_sample = self.now
        while self.now < end:
            if send is not None and self.now >= next_sample:
                self.good(**vitals) if send == "good" else self.refuse(send)
                next_sample += EVERY_S
            self.now += TICK_S
            self._keep(self.monitor.tick(self.now))

    def first(self, kind: str, after: float) -> tuple[float, AlertRaised]:
        return next((t, e) for t, e in self.raised if e.alert.kind == kind and t >= after)

    def closed(self, kind: str, after: float) -> float:
        return next(t for t, e in self.cleared if e.alert.kind == kind and t >= after)


def test_a_steady_patient_is_monitored_and_nothing_is_raised():
    ward = Ward()
    ward.run(3600)
    assert ward.monitor.verdict(ward.now).cause == MONITORED
    assert not [e for _, e in ward.raised if e.alert.category == "technical"]


def test_a_last_will_raises_device_offline_within_2_min_and_readings_close_it():
    ward = Ward()
    ward.run(300)
    fault = ward.now
    ward._keep(ward.monitor.device_status("offline", ward.now))
    assert ward.monitor.verdict(ward.now).cause == OFFLINE
    ward.run(600, send=None)
    t, raised = ward.first("device_offline", fault)
    assert t - fault <= 30 + TICK_S, "fast path: not the 15-min silence timeout"
    assert raised.alert.values["cause"] == OFFLINE and "offline" in raised.alert.rule
    resumed = ward.now
    ward.run(60)
    assert ward.closed("device_offline", resumed) - resumed <= EVERY_S
    assert ward.monitor.verdict(ward.now).cause == MONITORED


def test_an_online_status_alone_does_not_close_it_but_ends_the_will():
    ward = Ward()
    ward.run(60)
    ward._keep(ward.monitor.device_status("offline", ward.now))
    ward.run(60, send=None)
    assert ward.monitor.offline.open is not None
    ward._keep(ward.monitor.device_status("online", ward.now))
    assert ward.monitor.offline.open is not None, "monitored again only once readings arrive"


def test_silence_raises_at_the_timeout_plus_one_tick_and_closes_on_data():
    ward = Ward()
    ward.run(300)
    fault = ward.now
    ward.run(20 * 60, send=None)
    t, raised = ward.first("device_offline", fault)
    assert 15 * 60 <= t - fault + EVERY_S <= 15 * 60 + EVERY_S + TICK_S
    assert raised.alert.values["cause"] == SILENT
    resumed = ward.now
    ward.run(30)
    assert ward.closed("device_offline", resumed) - resumed <= EVERY_S


def test_silence_is_on_the_wall_clock_even_after_a_sample_dated_in_the_future():
    """The issue's first finding: the last-seen time lay in the future and nothing fired."""
    ward = Ward()
    ward.run(60)
    ward.good(device_t=ward.now + 240)  # within the contract's skew, but ahead
    fault = ward.now
    ward.run(20 * 60, send=None)
    t, _ = ward.first("device_offline", fault)
    assert t - fault <= 15 * 60 + TICK_S


def rejection_flood(reason: str, expected_cause: str) -> None:
    ward = Ward()
    ward.run(300)
    fault = ward.now
    ward.run(300, send=reason)
    t, raised = ward.first(NOT_MONITORED, fault)
    assert t - fault <= 60 + TICK_S, "a flood of refusals: within 2 min (60 s)"
    assert raised.alert.values == {"cause": expected_cause, "reason": reason}
    assert raised.alert.category == "technical"
    assert not [e for _, e in ward.raised if e.alert.kind == "device_offline"], "not wrongly called silence"
    resumed = ward.now
    ward.run(30)
    assert ward.closed(NOT_MONITORED, resumed) - resumed <= EVERY_S
    assert ward.monitor.verdict(ward.now).cause == MONITORED


def test_every_sample_refused_for_schema_raises_not_monitored_naming_it():
    rejection_flood("schema_invalid", REJECTED)


def test_every_sample_refused_as_implausible_names_plausibility():
    rejection_flood("implausible_value", REJECTED)


def test_every_sample_refused_for_its_clock_is_the_clock_cause():
    rejection_flood("stale_timestamp", CLOCK)  # a clock reset to 1970 after a battery change


def test_every_sample_refused_for_its_sequence_names_sequence():
    rejection_flood("duplicate_seq", REJECTED)


def test_one_bad_batch_among_good_ones_raises_nothing():
    ward = Ward()
    for _ in range(30):
        ward.run(10)
        ward.refuse("schema_invalid")
    assert not ward.raised


def test_a_clock_far_behind_with_accepted_samples_is_the_clock_cause_and_recovers():
    ward = Ward()
    ward.run(120)
    fault = ward.now
    end = ward.now + 300
    while ward.now < end:  # accepted by the contract (within 7 days), but an hour behind
        ward.good(device_t=ward.now - 3600 + 10_000)  # newer than before: not late
        ward.now += EVERY_S
        ward._keep(ward.monitor.tick(ward.now))
    t, raised = ward.first(NOT_MONITORED, fault)
    assert raised.alert.values["cause"] == CLOCK and t - fault <= 60 + EVERY_S
    resumed = ward.now
    ward.run(60, device_t=None)
    assert ward.closed(NOT_MONITORED, resumed) - resumed <= EVERY_S


def test_untrusted_signal_is_folded_in_as_poor_signal():
    ward = Ward()
    ward.run(120)
    fault = ward.now
    ward.run(25 * 60, contact=False)
    assert ward.monitor.verdict(ward.now).cause == UNTRUSTED
    t, _ = ward.first("poor_signal", fault)
    assert t - fault <= 20 * 60 + EVERY_S
    assert ward.monitor.covering_alert(ward.monitor.verdict(ward.now)) is not None
    resumed = ward.now
    ward.run(30)
    assert ward.closed("poor_signal", resumed) - resumed <= EVERY_S


def test_an_expected_vital_missing_raises_not_monitored_and_closes_when_it_returns():
    ward = Ward()
    ward.run(120)
    fault = ward.now
    ward.run(20 * 60, spo2=None)
    t, raised = ward.first(NOT_MONITORED, fault)
    assert raised.alert.values == {"cause": VITALS_MISSING, "reason": "spo2"}
    assert t - fault <= 15 * 60 + EVERY_S
    resumed = ward.now
    ward.run(30)
    assert ward.closed(NOT_MONITORED, resumed) - resumed <= EVERY_S


def test_enrolled_but_never_seen_raises_after_its_bound_and_closes_on_the_first_reading():
    ward = Ward(never_seen_after_s=600.0)
    ward.run(900, send=None)
    t, raised = ward.first(NOT_MONITORED, T0)
    assert raised.alert.values["cause"] == NEVER_SEEN and t - T0 <= 600 + TICK_S
    resumed = ward.now
    ward.run(10)
    assert ward.closed(NOT_MONITORED, resumed) - resumed <= EVERY_S


def test_the_stray_sample_cannot_blind_the_patient():
    """The issue's first finding: one test sample with a time ahead of the device's and a huge
    seq. Later samples are late until the cursor adopts the device's real stream (2 min)."""
    ward = Ward()
    ward.run(120)
    stray = Reading("pt-1", "wr-1", ward.now + 3600, 10**9, hr=72.0, spo2=97.0)
    ward.monitor.observe(stray)
    fault = ward.now
    late_until = None
    for _ in range(120):
        ward.seq += 1
        r = sample(ward.now, ward.seq)
        assessment = ward.monitor.observe(r)
        if "late" in assessment.flags:
            late_until = ward.now
        ward.now += EVERY_S
    assert late_until is not None and late_until - fault <= 120 + 5 * EVERY_S
    assert ward.monitor.last_seen_t <= ward.now, "the stray's time is forgotten"
    # And it is assessed again: a bradycardia is seen.
    for _ in range(60):
        ward.good(hr=35.0)
        ward.now += EVERY_S
    assert ward.first("bradycardia", fault)


def test_a_late_batch_stays_late_and_a_redelivery_stays_a_duplicate():
    monitor = PatientMonitor("pt-1")
    for seq in range(1, 200):  # the device's live stream; the broker held back seq 100..150
        if not 100 <= seq <= 150:
            assert monitor.observe(sample(T0 + seq * EVERY_S, seq)).flags != ("late",)
    late = [monitor.observe(sample(T0 + seq * EVERY_S, seq)) for seq in range(100, 151)]
    assert all(a.accepted and a.flags == ("late",) for a in late[:4]), "a late batch is late"
    assert monitor.devices["wr-1"].last_seq == 199
    again = monitor.observe(sample(T0 + 199 * EVERY_S, 199))
    assert not again.accepted and again.events[0].reason == "duplicate_seq"


def test_attack_a_late_batch_interleaved_with_live_samples_never_moves_the_cursor_back():
    monitor = PatientMonitor("pt-1")
    live = 1000
    for seq in range(1, 100):
        monitor.observe(sample(T0 + seq, seq))
    for old in range(10, 90):  # a redelivered backlog, one late sample between live ones
        assert monitor.observe(sample(T0 + old, old)).flags == ("late",)
        live += 1
        assert monitor.observe(sample(T0 + live, live)).accepted
    assert monitor.devices["wr-1"].last_seq == live


def test_judge_is_pure_and_first_cause_wins():
    cov = Coverage()
    cov.watch(T0)
    cov.went_offline(T0 + 1)
    for k in range(5):
        cov.refused(T0 + 2 + k / 10, "schema_invalid")  # five messages
    verdict = judge(cov, T0 + 10, CoverageLimits(), last_seen_t=None, stale_after_s=900, untrusted_since=None,
                    untrusted_after_s=1200, vital_t={})
    assert verdict.cause == OFFLINE and verdict.due == T0 + 31
    cov.came_online()
    verdict = judge(cov, T0 + 10, CoverageLimits(), last_seen_t=None, stale_after_s=900, untrusted_since=None,
                    untrusted_after_s=1200, vital_t={})
    assert verdict.cause == REJECTED and verdict.reason == "schema_invalid"


def test_attack_online_statuses_without_readings_do_not_hide_silence():
    """A device (or anyone on its status topic) repeating `online` while sending no readings."""
    ward = Ward()
    ward.run(120)
    fault = ward.now
    for _ in range(20 * 6):
        ward._keep(ward.monitor.device_status("online", ward.now))
        ward.run(10, send=None)
    t, raised = ward.first("device_offline", fault)
    assert raised.alert.values["cause"] == SILENT and t - fault <= 15 * 60 + EVERY_S + TICK_S


def test_attack_late_samples_forever_cannot_pass_for_monitoring():
    """Samples that are all late (never assessed) count as refusals of kind sequence."""
    ward = Ward()
    ward.run(120)
    fault = ward.now
    for k in range(60):
        ward._keep(ward.monitor.refused(ward.now, "late"))
        ward.now += EVERY_S
        ward._keep(ward.monitor.tick(ward.now))
    t, raised = ward.first(NOT_MONITORED, fault)
    assert raised.alert.values == {"cause": REJECTED, "reason": "late"} and t - fault <= 60 + EVERY_S


def test_refusals_count_by_message_and_one_bad_message_raises_nothing():
    """A flood is two messages at least (told apart by receipt time): one message of four refused
    samples between good ones is not a flood, whatever its number of samples."""
    cov = Coverage()
    cov.watch(T0)
    cov.heard(T0, T0, 600.0)
    for _ in range(4):
        cov.refused(T0 + 60, "stale_timestamp")
    limits = CoverageLimits()
    at = dict(last_seen_t=T0, stale_after_s=900, untrusted_since=None, untrusted_after_s=1200, vital_t={})
    assert judge(cov, T0 + 100, limits, **at).monitored, "one message: not a flood"
    cov.refused(T0 + 120, "stale_timestamp")
    verdict = judge(cov, T0 + 120, limits, **at)
    assert verdict.cause == CLOCK and verdict.since == T0 + 60 and verdict.due == T0 + 60 + limits.rejected_after_s
    cov.heard(T0 + 180, T0 + 180, 600.0)
    assert cov.refused_messages == 0 and judge(cov, T0 + 180, limits, **{**at, "last_seen_t": T0 + 180}).monitored
