"""Webhooks signed with HMAC-SHA256, for EHRs, paging systems and on-call tools.

Wire format (what a receiver implements):

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <key>            same key on every retry of the same message: dedupe on it
    X-Vigil-Timestamp: <unix seconds>
    X-Vigil-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

The timestamp is inside the signed text so a captured request cannot be replayed later than the
receiver's tolerance; the scheme (version prefix, several `v1=` values allowed while a secret is
rotated) follows Stripe's and Svix's, which receivers already know. The body is the delivery's
payload plus key, audience, subject and body; the internal recipient id is never sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, SendResult, TemporaryFailure

log = logging.getLogger("vigil.notify.webhook")

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Vigil-Signature` value for one request."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str,
                     tolerance_s: float = 300, now: float | None = None) -> bool:
    """For receivers: is `header` a valid signature of `body` at `timestamp`, recent enough?

    `body` must be the raw bytes as received (re-serialising parsed JSON changes them).
    Accepts several comma- or space-separated `v1=` values, so a sender can sign with the old and
    the new secret while it is rotated.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in header.replace(",", " ").split()]
    # compare_digest on every candidate: the time taken must not reveal how much of one matched.
    return any([hmac.compare_digest(expected.encode(), c.encode()) for c in candidates if c.startswith("v1=")])


class SignedWebhook:
    """The `webhook` channel: one pooled httpx client for every endpoint."""

    name = "webhook"

    def __init__(self, secret: bytes, timeout: float = 5, *, client: httpx.AsyncClient | None = None) -> None:
        if not secret:
            raise ValueError("an unsigned webhook is not offered: give SignedWebhook a secret")
        self._secret = secret
        # Redirects are not followed: a signed POST re-sent to wherever a 3xx points is not
        # something the endpoint's owner agreed to.
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                                   headers={"User-Agent": "vigil-notify/1"})

    def encode(self, delivery: Delivery) -> bytes:
        document: dict[str, Any] = dict(delivery.payload)
        document.update(key=delivery.key, audience=delivery.audience, subject=delivery.subject,
                        body=delivery.body, critical=delivery.critical)
        # Compact and UTF-8 as is: these exact bytes are what gets signed.
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    async def send(self, delivery: Delivery) -> SendResult:
        url = delivery.address.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PermanentFailure(f"not an http(s) URL: {url!r}")
        body = self.encode(delivery)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: delivery.key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"webhook {parts.netloc}: timed out") from exc
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS
            raise TemporaryFailure(f"webhook {parts.netloc}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            provider_id = response.headers.get("X-Request-Id") or _json_id(response)
            log.info("webhook accepted", extra={"key": delivery.key, "host": parts.netloc, "status": status})
            return SendResult(provider_id=provider_id)
        text = f"webhook {parts.netloc}: HTTP {status}: {response.text[:200]}"
        if 400 <= status < 500 and status not in (408, 429):
            raise PermanentFailure(text)
        raise TemporaryFailure(text)  # 5xx, 408, 429 and (unfollowed) 3xx

    async def close(self) -> None:
        await self._client.aclose()


def _json_id(response: httpx.Response) -> str | None:
    try:
        document = response.json()
    except ValueError:
        return None
    value = document.get("id") if isinstance(document, dict) else None
    return str(value) if value is not None else None
