"""What is kept of refused input: bounded bytes, bounded rows, exact counts.

Every rejection is counted (`vigil_rejected_total{reason}`, by the pipeline) and added to the
per-(device, reason) counts that the store upserts once per batch (`dead_letter_counts`). A
dead-letter *row* is kept only while the device's token bucket (and one shared by all devices,
so that rotating device ids buys no more rows) has a token, and it keeps at most
`max_raw_bytes` of the payload, with the payload's full length and SHA-256. So an 8 MB payload
costs 64 KiB, a flooding device costs `burst` rows and then `rate_per_s` rows a second, and the
counts stay exact whatever is not kept.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

from vigil.settings import VigilSettings
from vigil.shell.stores.rows import DeadLetterCountRow, DeadLetterRow
from vigil.shell.stores.sql import WriteBatch

MAX_RAW_BYTES = 64 * 1024
RATE_PER_S = 1.0
BURST = 60
TOTAL_RATE_PER_S = 50.0
TOTAL_BURST = 1000
MAX_DEVICES = 10_000  # buckets remembered; the least recently refused device is forgotten first


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
    """Turns a rejection into a capped row (when its device's budget allows) and a count."""

    def __init__(self, *, max_raw_bytes: int = MAX_RAW_BYTES, rate_per_s: float = RATE_PER_S, burst: int = BURST,
                 total_rate_per_s: float = TOTAL_RATE_PER_S, total_burst: int = TOTAL_BURST,
                 max_devices: int = MAX_DEVICES) -> None:
        self.max_raw_bytes = max_raw_bytes
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_devices = max_devices
        self._devices: OrderedDict[str, TokenBucket] = OrderedDict()
        self._total: TokenBucket | None = None
        self._total_limits = (total_rate_per_s, total_burst)
        self.kept = 0
        self.not_kept = 0

    @classmethod
    def from_settings(cls, settings: VigilSettings) -> DeadLetterKeeper:
        return cls(max_raw_bytes=settings.deadletter_max_raw_bytes, rate_per_s=settings.deadletter_rate_per_s,
                   burst=settings.deadletter_burst, total_rate_per_s=settings.deadletter_total_rate_per_s,
                   total_burst=settings.deadletter_total_burst)

    def _allowed(self, device_key: str, t: float) -> bool:
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
        if bucket.tokens < 1.0 or self._total.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        self._total.tokens -= 1.0
        return True

    def add(self, batch: WriteBatch, *, received_at: float, topic: str, device_id: str | None, patient_id: str | None,
            reason: str, detail: str, sample_index: int | None, raw: bytes) -> bool:
        """Count the rejection in the batch, and keep its row if the budget allows. True: kept."""
        device_id = device_id[:64] if device_id else None  # the topic's words: a device id is at most 64
        device_key = device_id or ""
        kept = self._allowed(device_key, received_at)
        batch.dead_letter_counts.append(DeadLetterCountRow(device_key, reason, 1, int(kept), received_at, received_at))
        if not kept:
            self.not_kept += 1
            return False
        self.kept += 1
        capped = cap_raw(raw, self.max_raw_bytes)
        batch.dead_letters.append(DeadLetterRow(received_at, topic[:256], device_id, patient_id, reason, detail,
                                                sample_index, capped.raw, capped.raw_bytes, capped.raw_sha256))
        return True

