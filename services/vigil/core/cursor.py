"""DeviceCursor: where one device's stream stands, so that a sample is new, a duplicate or late.

- A sample whose seq was just seen is a duplicate (a QoS 1 redelivery): refused.
- A new sample with a smaller seq and an older-or-equal time than the newest is late (a broker
  may redeliver a batch after newer ones): kept, flagged `late`, not assessed.
- A smaller seq with a newer time is a counter reset (a reboot): new.

One stray sample (a test publish with the real time and a huge seq, a clock that jumped ahead
and back) must not capture the cursor: every later sample would be late, and the patient blind.
So the cursor counts its `support`: the samples that reached the newest one in order, each a
small step of seq (at most `MAX_SEQ_STEP`) after the one before; a jump starts again at 1. The
samples arriving behind the newest are followed as a rival stream; a rival that keeps going in
order, with nothing new in between, for more samples than the newest one's support (and at
least `RIVAL_SAMPLES`, spanning `RIVAL_SPAN_S` of the device's time) is the device's real
stream: the cursor adopts it and the stray is forgotten. A true late batch does not: it is
behind a long, supported stream, a new sample between late ones resets the rival, and a
redelivery of samples seen before is a duplicate.
"""

from __future__ import annotations

import math

from vigil.core.saved_state import restore

RECENT_SEQS = 32
RIVAL_SAMPLES = 5
RIVAL_SPAN_S = 120.0
MAX_SEQ_STEP = 1000

NEW, LATE, ADOPTED = 0, 1, 2


class DeviceCursor:
    """The newest sequence number and time seen from one device, a few recent ones, and the
    rival stream arriving behind them."""

    __slots__ = ("last_seq", "last_t", "recent", "support", "rival_seq", "rival_t", "rival_first_t", "rival_count")

    def __init__(self) -> None:
        self.last_seq = -1
        self.last_t = -math.inf
        self.recent: dict[int, None] = {}
        self.support = 0
        self.rival_seq = -1
        self.rival_t = -math.inf
        self.rival_first_t = -math.inf
        self.rival_count = 0

    def __setstate__(self, state: object) -> None:
        """Unpickle, also a cursor pickled before the rival stream existed."""
        self.__init__()  # type: ignore[misc]
        restore(self, state)

    def check(self, seq: int) -> str | None:
        """None when the sample is new, else why it is refused (it was received already)."""
        if seq in self.recent or seq == self.last_seq:
            return "duplicate_seq"
        return None

    def behind(self, seq: int, t: float) -> bool:
        """A new sample from before the newest one (see `place`, which also follows rivals)."""
        return seq < self.last_seq and t <= self.last_t

    def place(self, seq: int, t: float) -> int:
        """NEW (the caller then `accept`s it), LATE, or ADOPTED (the sample ends a rival stream
        long enough to be the device's real one: the cursor moved back to it, and it is new)."""
        if not (seq < self.last_seq and t <= self.last_t):
            return NEW
        if self.rival_count and seq > self.rival_seq and t >= self.rival_t:
            self.rival_seq, self.rival_t = seq, t
            self.rival_count += 1
            count = self.rival_count
            if count >= RIVAL_SAMPLES and count > self.support and t - self.rival_first_t >= RIVAL_SPAN_S:
                self.last_seq, self.last_t = seq, t
                self.support, self.rival_count = count, 0
                self.remember(seq)
                return ADOPTED
        else:
            self.rival_seq, self.rival_t, self.rival_first_t, self.rival_count = seq, t, t, 1
        return LATE

    def remember(self, seq: int) -> None:
        """Note a late sample as received, without moving the cursor back."""
        recent = self.recent
        recent[seq] = None
        if len(recent) > RECENT_SEQS:
            del recent[next(iter(recent))]

    def accept(self, seq: int, t: float) -> None:
        self.support = self.support + 1 if 0 < seq - self.last_seq <= MAX_SEQ_STEP else 1
        self.last_seq = seq
        if t > self.last_t:
            self.last_t = t
        self.rival_count = 0
        self.remember(seq)
