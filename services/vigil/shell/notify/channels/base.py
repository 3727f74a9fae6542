"""The contract between the outbox dispatcher and every delivery channel.

A channel turns one outbox row (a `Delivery`) into one provider call. It does not retry and
does not remember what it sent: the dispatcher owns retries (with backoff) and marks the row
sent in the same database that holds the outbox. A channel's only job beyond sending is to say
how a failure should be treated, by raising `PermanentFailure` (give up, try the next channel
or contact) or `TemporaryFailure` (retry later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row, ready to send."""

    key: str  # idempotency key: stable, the same key is the same message
    channel: str  # "sms" | "email" | "webhook" | "app"
    recipient_id: str  # e.g. "patient:p-001"; never shown to third parties
    address: str  # E.164 phone, e-mail address, webhook URL, or app inbox id
    audience: str  # "patient" | "clinician"
    subject: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)  # structured event for webhook/app
    critical: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_id: str | None  # Twilio SID, SMTP Message-ID, webhook response id, push event id


class DeliveryFailure(Exception):
    """Base of the two outcomes a dispatcher must tell apart."""


class PermanentFailure(DeliveryFailure):
    """Retrying the same request cannot succeed (bad address, rejected by the provider)."""


class TemporaryFailure(DeliveryFailure):
    """Retry with backoff (timeout, 5xx, 429, connection refused)."""


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> SendResult: ...

    async def close(self) -> None: ...
