"""What is kept of refused input: bounded bytes, bounded rows, exact counts.

Every rejection is counted (`vigil_rejected_total{reason}`, by the pipeline) and added to the
per-(device, reason) counts that the store upserts once per batch (`dead_letter_counts`). A
dead-letter *row* is kept only while two token buckets allow it:

- the device's, in rows (`burst`, then `rate_per_s`). Devices that are not enrolled share one
  bucket and one count key (""): their ids are whatever a client wrote in the topic, so keying by
  them would let an anonymous client grow the buckets and the counts table without end;
- one for all devices, in bytes (`total_burst_bytes`, then `total_bytes_per_s`; a row costs its
  kept bytes plus ROW_OVERHEAD), so the disk that bad input can take within the retention is
  at most about total_bytes_per_s × retention.

A row keeps at most `max_raw_bytes` of the payload, with the payload's full length and SHA-256.
So an 8 MB payload costs 64 KiB, a flooding device costs `burst` rows and then `rate_per_s` rows
a second, and the counts stay exact whatever is not kept.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

from vigil.settings import VigilSettings
from vigil.shell.stores.rows import DeadLetterCountRow, DeadLetterRow
from vigil.shell.stores.sql import WriteBatch

MAX_RAW_BYTES = 64 * 1024
RATE_PER_S = 0.1
BURST = 20
TOTAL_BYTES_PER_S = 2048.0
TOTAL_BURST_BYTES = 8 * 1024 * 1024
ROW_OVERHEAD = 256  # what a row costs beside its bytes (columns, index entries), in bucket bytes
MAX_DEVICES = 10_000  # buckets remembered; the least recently refused device is forgotten first
UNENROLLED = ""  # the one bucket and count key of every device that is not enrolled


class CappedRaw(NamedTuple):
    """The first bytes of a payload, its full length and the SHA-256 of all of it."""

    raw: bytes
    raw_bytes: int
    raw_sha256: str


def cap_raw(raw: bytes, max_bytes: int = MAX_RAW_BYTES) -> CappedRaw:
    return CappedRaw(bytes(raw[:max_bytes]), len(raw), hashlib.sha256(raw).hexdigest())


class TokenBucket:
    """`burst` tokens, refilled at `rate_per_s`; time from the messages, never going backwards."""

    __slots__ = ("rate_per_s", "burst", "tokens", "t")

    def __init__(self, rate_per_s: float, burst: float, t: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.t = t

    def refill(self, t: float) -> None:
        if t > self.t:
            self.tokens = min(self.burst, self.tokens + (t - self.t) * self.rate_per_s)
            self.t = t

    def take(self, t: float) -> bool:
        self.refill(t)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class DeadLetterKeeper:
    """Turns a rejection into a count and, when the budgets allow, a capped row."""

    def __init__(self, *, max_raw_bytes: int = MAX_RAW_BYTES, rate_per_s: float = RATE_PER_S, burst: int = BURST,
                 total_bytes_per_s: float = TOTAL_BYTES_PER_S, total_burst_bytes: int = TOTAL_BURST_BYTES,
                 max_devices: int = MAX_DEVICES, limited: bool = True) -> None:
        self.max_raw_bytes = max_raw_bytes
        self.limited = limited
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_devices = max_devices
        self._devices: OrderedDict[str, TokenBucket] = OrderedDict()
        self._total: TokenBucket | None = None
        self._total_limits = (total_bytes_per_s, total_burst_bytes)
        self.kept = 0
        self.not_kept = 0

    @classmethod
    def from_settings(cls, settings: VigilSettings) -> DeadLetterKeeper:
        return cls(max_raw_bytes=settings.deadletter_max_raw_bytes, rate_per_s=settings.deadletter_rate_per_s,
                   burst=settings.deadletter_burst, total_bytes_per_s=settings.deadletter_total_bytes_per_s,
                   total_burst_bytes=settings.deadletter_total_burst_bytes)

    @classmethod
    def capped_only(cls, settings: VigilSettings) -> DeadLetterKeeper:
        """Every row kept, bytes capped: for the scaled processor, whose dead letters go to
        `vigil.deadletter` (every one a record; the topic's retention is the bound)."""
        return cls(max_raw_bytes=settings.deadletter_max_raw_bytes, limited=False)

    def _allowed(self, device_key: str, cost: int, t: float) -> bool:
        if not self.limited:
            return True
        bucket = self._devices.get(device_key)
        if bucket is None:
            bucket = self._devices[device_key] = TokenBucket(self.rate_per_s, self.burst, t)
            if len(self._devices) > self.max_devices:
                self._devices.popitem(last=False)
        else:
            self._devices.move_to_end(device_key)
        if self._total is None:
            self._total = TokenBucket(*self._total_limits, t)
        self._total.refill(t)
        bucket.refill(t)
        if bucket.tokens < 1.0 or self._total.tokens < cost:
            return False
        bucket.tokens -= 1.0
        self._total.tokens -= cost
        return True

    def add(self, batch: WriteBatch, *, received_at: float, topic: str, device_id: str | None, patient_id: str | None,
            reason: str, detail: str, sample_index: int | None, raw: bytes, enrolled: bool) -> bool:
        """Count the rejection in the batch, and keep its row if the budgets allow. True: kept.
        `enrolled`: the device is on the roster (its id is not just what a client wrote)."""
        device_id = device_id[:64] if device_id else None  # the topic's words: a device id is at most 64
        device_key = device_id if enrolled and device_id else UNENROLLED
        kept_bytes = min(len(raw), self.max_raw_bytes)
        kept = self._allowed(device_key, kept_bytes + len(detail) + ROW_OVERHEAD, received_at)
        batch.dead_letter_counts.append(DeadLetterCountRow(device_key, reason, 1, int(kept), received_at, received_at))
        if not kept:
            self.not_kept += 1
            return False
        self.kept += 1
        capped = cap_raw(raw, self.max_raw_bytes)
        batch.dead_letters.append(DeadLetterRow(received_at, topic[:256], device_id, patient_id, reason, detail,
                                                sample_index, capped.raw, capped.raw_bytes, capped.raw_sha256))
        return True
