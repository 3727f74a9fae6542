"""Monitoring coverage: at any moment, each enrolled patient is monitored, or not, with a cause.

A remote-monitoring service is trusted for what it sees and for saying when it cannot see. So
every patient's state carries a `Coverage`: what the shell heard about the patient's devices on
the wall clock (samples assessed, samples refused and why, a last will), and `judge` turns it,
with the monitor's own state (silence, untrusted signal, vitals), into one `Verdict`.

Each cause has a bound: the moment by which a technical alert covering it must be open (`due`).
Causes and the alert that covers them (docs/coverage.md):

| cause | detected | covered by (due) |
|---|---|---|
| offline | the device's last will (`offline` status) | device_offline (will + `will_after_s`) |
| rejected | every sample refused since (kind: clock, schema, plausibility, sequence) | not_monitored (first refusal + `rejected_after_s`) |
| clock | the device's newest sample far from its receipt time | not_monitored (first such message + `clock_for_s`) |
| silent | nothing heard for the silence timeout | device_offline (at once) |
| never_seen | enrolled, nothing heard since Vigil started watching | not_monitored (`never_seen_after_s`) |
| untrusted | signal untrusted (off skin, stuck, moving) | poor_signal (untrusted since + its threshold) |
| vitals_missing | an expected vital absent from trusted readings | not_monitored (at once, after `missing_after_s`) |

Time: the wall clock of the shell (`now`, receipt times) for what was heard; the device's own
clock only to judge vitals against each other. Mixing the two is how one stray sample with a
wrong time blinded a patient before (issue 13). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.core.saved_state import restore

MONITORED = "monitored"
OFFLINE = "offline"
REJECTED = "rejected"
CLOCK = "clock"
SILENT = "silent"
NEVER_SEEN = "never_seen"
UNTRUSTED = "untrusted"
VITALS_MISSING = "vitals_missing"
CAUSES = (OFFLINE, REJECTED, CLOCK, SILENT, NEVER_SEEN, UNTRUSTED, VITALS_MISSING)

# The technical alert kind that covers each cause once it is due.
NOT_MONITORED = "not_monitored"
COVERED_BY: dict[str, str] = {
    OFFLINE: "device_offline", SILENT: "device_offline", UNTRUSTED: "poor_signal",
    REJECTED: NOT_MONITORED, CLOCK: NOT_MONITORED, NEVER_SEEN: NOT_MONITORED, VITALS_MISSING: NOT_MONITORED,
}

# A refusal reason (the contract's and the core's) grouped as the person fixing the device sees it.
REFUSAL_KINDS: dict[str, str] = {
    "future_timestamp": "clock", "stale_timestamp": "clock",
    "malformed_json": "schema", "schema_invalid": "schema", "oversize": "schema", "topic_mismatch": "schema",
    "implausible_value": "plausibility",
    "duplicate_seq": "sequence", "out_of_order_seq": "sequence", "late": "sequence",
}

# Plain words for a patient or a nurse (the alert's rule text).
WORDS: dict[str, str] = {
    OFFLINE: "the monitor said it went offline",
    SILENT: "no readings from the monitor",
    NEVER_SEEN: "enrolled, but no reading has ever arrived from the monitor",
    UNTRUSTED: "the monitor's readings cannot be trusted (off the skin, stuck or moving)",
    VITALS_MISSING: "the monitor sends readings, but not {vitals}",
    CLOCK: "the monitor's clock is wrong by {minutes} min: its readings cannot be used",
    REJECTED: "every reading from the monitor is refused: {kind}",
}
KIND_WORDS: dict[str, str] = {
    "clock": "its clock is wrong", "schema": "its data is not in the expected format",
    "plausibility": "its values are impossible", "sequence": "its sample numbers are out of order",
    "internal": "Vigil failed to read it",
}


@dataclass(frozen=True, slots=True)
class CoverageLimits:
    """The bounds, in seconds. Defaults: a last will or a flood of refusals is an incident
    within 2 min of the fault (30 s after the will or the first refusal, plus a check interval;
    a device that batches a minute of samples per message adds up to a minute before its first
    refused message arrives). A flood needs `rejected_min` refused messages: one bad message
    between good ones raises nothing. The silence timeout is the QualityLimits'."""

    will_after_s: float = 30.0
    rejected_after_s: float = 30.0
    rejected_min: int = 2
    clock_off_s: float = 600.0
    clock_for_s: float = 60.0
    missing_after_s: float = 15 * 60.0
    never_seen_after_s: float = 15 * 60.0
    expected_vitals: tuple[str, ...] = ("hr", "spo2")


DEFAULT_COVERAGE = CoverageLimits()


@dataclass(frozen=True, slots=True)
class Verdict:
    """Monitored, or a cause with when it began, when its alert is due, and plain words."""

    cause: str
    since: float | None = None
    due: float | None = None
    words: str = ""
    reason: str = ""  # the main refusal reason (rejected, clock), or the missing vitals

    @property
    def monitored(self) -> bool:
        return self.cause == MONITORED


MONITORED_NOW = Verdict(MONITORED)


class Coverage:
    """What the shell heard about one patient's devices, on the wall clock (pickled with the
    patient's state)."""

    __slots__ = ("watched_t", "heard_t", "first_t", "refused_since", "refusals", "refused_messages", "refused_at",
                 "will_t", "clock_since", "offset_s")

    def __init__(self) -> None:
        self.watched_t: float | None = None  # when Vigil started watching this patient (first tick)
        self.heard_t: float | None = None  # receipt time of the newest message with an assessed sample
        self.first_t: float | None = None  # device time of the first assessed sample (vitals expected from then)
        self.refused_since: float | None = None  # first refusal since then
        self.refusals: dict[str, int] = {}  # reason -> samples (or payloads) refused since then
        self.refused_messages = 0  # messages with refusals since then (by receipt time)
        self.refused_at: float | None = None  # receipt time of the newest of them
        self.will_t: float | None = None  # a last will (`offline`) not followed by data or `online`
        self.clock_since: float | None = None
        self.offset_s = 0.0  # newest sample time minus receipt time, of the newest message

    def __setstate__(self, state: object) -> None:
        """Unpickle, also a state pickled before `refused_messages` existed."""
        self.__init__()  # type: ignore[misc]
        restore(self, state)

    def watch(self, now: float) -> None:
        if self.watched_t is None:
            self.watched_t = now

    def heard(self, received_at: float, newest_t: float, clock_off_s: float) -> None:
        """A message with at least one assessed sample: the device is heard, its refusals end."""
        self.heard_t = received_at
        if self.first_t is None:
            self.first_t = newest_t
        self.refused_since = None
        if self.refusals:
            self.refusals = {}
        self.refused_messages = 0
        self.refused_at = None
        self.will_t = None
        offset = newest_t - received_at
        catching_up = offset < 0 and offset - self.offset_s > 10.0  # a backlog uploading, not a wrong clock
        self.offset_s = offset
        if abs(offset) > clock_off_s and not catching_up:
            if self.clock_since is None:
                self.clock_since = received_at
        else:
            self.clock_since = None

    def refused(self, received_at: float, reason: str, count: int = 1) -> None:
        """`count` samples (or a whole payload) of a message received at `received_at` refused for
        `reason` (or kept but not assessed). The shell tells a message's refusals after its
        assessed samples (`heard`), so a message whose tail is refused starts the count: the
        device's newest samples are the refused ones. Messages are told apart by receipt time;
        one received before the newest message heard is a replay, and counts for nothing."""
        if self.heard_t is not None and received_at < self.heard_t:
            # Received before a message already heard: a replay of the past (a Kafka worker reading
            # again what it had applied but not committed, after a rebalance), not the device now.
            return
        if self.refused_since is None:
            self.refused_since = received_at
        self.refusals[reason] = self.refusals.get(reason, 0) + count
        if received_at != self.refused_at:
            self.refused_messages += 1
            self.refused_at = received_at

    def went_offline(self, t: float) -> None:
        if self.will_t is None:
            self.will_t = t

    def came_online(self) -> None:
        self.will_t = None

    def main_refusal(self) -> tuple[str, str]:
        """(kind, reason) of the most frequent refusal since the device was last heard."""
        if not self.refusals:
            return "", ""
        reason = max(self.refusals, key=self.refusals.__getitem__)
        return REFUSAL_KINDS.get(reason, "internal"), reason


def judge(cov: Coverage, now: float, limits: CoverageLimits, *, last_seen_t: float | None, stale_after_s: float,
          untrusted_since: float | None, untrusted_after_s: float, vital_t: dict[str, float]) -> Verdict:
    """The patient's verdict at `now`. `last_seen_t` and `vital_t` (newest trusted time per
    vital) are on the device's clock; everything else on the wall clock. First cause wins."""
    if cov.will_t is not None:
        return Verdict(OFFLINE, cov.will_t, cov.will_t + limits.will_after_s, WORDS[OFFLINE])
    since = cov.refused_since
    if since is not None and cov.refused_messages >= limits.rejected_min:
        kind, reason = cov.main_refusal()
        if kind == "clock":
            words = WORDS[CLOCK].format(minutes="more than 5")
            return Verdict(CLOCK, since, since + limits.rejected_after_s, words, reason)
        words = WORDS[REJECTED].format(kind=KIND_WORDS.get(kind, kind))
        return Verdict(REJECTED, since, since + limits.rejected_after_s, words, reason)
    heard_t = cov.heard_t
    if heard_t is None and last_seen_t is None:
        start = cov.watched_t if cov.watched_t is not None else now
        if now - start >= limits.never_seen_after_s:
            return Verdict(NEVER_SEEN, start, start + limits.never_seen_after_s, WORDS[NEVER_SEEN])
        return MONITORED_NOW  # not yet due: a patient just enrolled
    if cov.clock_since is not None and heard_t is not None and now - heard_t <= stale_after_s:
        minutes = round(abs(cov.offset_s) / 60)
        words = WORDS[CLOCK].format(minutes=minutes)
        ahead = "ahead" if cov.offset_s > 0 else "behind"
        return Verdict(CLOCK, cov.clock_since, cov.clock_since + limits.clock_for_s, words, f"clock {ahead}")
    # Silence on the older of the two clocks: a sample dated in the future cannot hide it, and a
    # replayed backlog (the shell's receipt time is new, the samples are not) still counts as old.
    heard = last_seen_t if heard_t is None else heard_t if last_seen_t is None else min(heard_t, last_seen_t)
    if now - heard > stale_after_s:
        return Verdict(SILENT, heard, heard + stale_after_s, WORDS[SILENT])
    if untrusted_since is not None:
        # On the device's clock: how long it has been untrusted, carried onto the wall clock.
        start = now - max(0.0, (last_seen_t or untrusted_since) - untrusted_since)
        return Verdict(UNTRUSTED, start, start + untrusted_after_s, WORDS[UNTRUSTED])
    if last_seen_t is not None:
        first = cov.first_t if cov.first_t is not None else last_seen_t
        missing = [name for name in limits.expected_vitals
                   if last_seen_t - max(vital_t.get(name, first), first) > limits.missing_after_s]
        if missing:
            return Verdict(VITALS_MISSING, now, now, WORDS[VITALS_MISSING].format(vitals=", ".join(missing)),
                           ",".join(missing))
    return MONITORED_NOW
