"""The device learns why: a refusal, published back on `vigil/v1/devices/{id}/errors`.

One JSON object per refusal (docs/device-protocol.md): the reason (the dead letter's), the field
(the contract's path to it, when one is named), the sample's index and seq when known, and a
short detail. Rate-limited per device (`FeedbackLimiter`): at most one message per `every_s`,
the next one saying how many were left out, so that a broken device cannot flood the broker.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from vigil.shell.contract.topics import errors_topic
from vigil.shell.contract.validation import Rejection

_FIELD = re.compile(r"^(samples\.\d+\.[A-Za-z_.0-9]+|[A-Za-z_][A-Za-z_0-9]*):")
DEFAULT_EVERY_S = 10.0
MAX_DEVICES = 100_000


@dataclass(frozen=True, slots=True)
class DeviceError:
    """One refusal to tell a device."""

    device_id: str
    reason: str
    detail: str
    received_at: float
    sample_index: int | None = None
    seq: int | None = None

    @staticmethod
    def of(rejection: Rejection, seq: int | None = None) -> "DeviceError | None":
        if rejection.device_id is None:
            return None
        return DeviceError(rejection.device_id, str(rejection.reason), rejection.detail, rejection.received_at,
                           rejection.sample_index, seq)

    def field(self) -> str | None:
        match = _FIELD.match(self.detail)
        return match.group(1) if match else None

    def payload(self, left_out: int = 0) -> bytes:
        body: dict[str, object] = {
            "v": 1, "device_id": self.device_id, "reason": self.reason, "field": self.field(),
            "sample_index": self.sample_index, "seq": self.seq, "detail": self.detail[:200],
            "ts": datetime.fromtimestamp(self.received_at, timezone.utc).isoformat().replace("+00:00", "Z"),
        }
        if left_out:
            body["left_out"] = left_out
        return json.dumps(body, separators=(",", ":")).encode()

    @property
    def topic(self) -> str:
        return errors_topic(self.device_id)


class FeedbackLimiter:
    """At most one error message per device per `every_s`; the rest are counted and the next
    message says how many were left out. Bounded memory (`MAX_DEVICES` devices remembered)."""

    def __init__(self, every_s: float = DEFAULT_EVERY_S) -> None:
        self.every_s = every_s
        self.last: dict[str, float] = {}
        self.left_out: dict[str, int] = {}
        self.sent = 0
        self.suppressed = 0

    def admit(self, error: DeviceError) -> tuple[str, bytes] | None:
        """(topic, payload) to publish now, or None (rate-limited: counted)."""
        device = error.device_id
        last = self.last.get(device)
        if last is not None and error.received_at - last < self.every_s:
            self.left_out[device] = self.left_out.get(device, 0) + 1
            self.suppressed += 1
            return None
        if len(self.last) >= MAX_DEVICES:
            self.last.clear()
            self.left_out.clear()
        self.last[device] = error.received_at
        self.sent += 1
        return error.topic, error.payload(self.left_out.pop(device, 0))
