"""E-mail over SMTP (stdlib smtplib, run in a worker thread).

SMTP has no idempotency either: a message the server accepted (250 after DATA) cannot be
recalled, and a crash before the outbox commit sends it again. What the key buys: the Message-ID
is derived from it, so a resent alert carries the same Message-ID as the first copy; mail stores
that deduplicate by Message-ID (Gmail does, within a mailbox) drop the copy, and every client
threads the two together. `X-Vigil-Idempotency-Key` carries the raw key for tracing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import default as DEFAULT_POLICY
from email.utils import formatdate

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, SendResult, TemporaryFailure

log = logging.getLogger("vigil.notify.email")

# RFC 5322 dot-atom text: what may stand left of the "@" in a Message-ID without quoting.
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def message_id_for(key: str) -> str:
    """`<key@vigil>` when the key is a valid message-id local part, else a hash of it: stable
    either way, so the same outbox row always produces the same Message-ID."""
    local = key if _ATEXT.match(key) and ".." not in key and not key.startswith(".") and not key.endswith(".") \
        else hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{local}@vigil>"


class SmtpEmail:
    """The `email` channel: one SMTP connection per message (alerts are rare; no pool needed)."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 10) -> None:
        self.host, self.port, self.sender = host, port, sender
        self._username, self._password = username, password
        self._starttls = starttls
        self._timeout = timeout

    def build_message(self, delivery: Delivery) -> EmailMessage:
        # Non-ASCII headers are RFC 2047 encoded on the way out, so a Chinese subject survives any
        # server; set_content picks UTF-8 with a 7-bit-safe transfer encoding for the body. Lines
        # stay "\n" inside the (base64) body; smtplib turns the message's own line ends into CRLF.
        msg = EmailMessage(policy=DEFAULT_POLICY)
        msg["From"] = self.sender
        msg["To"] = delivery.address
        msg["Subject"] = delivery.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = message_id_for(delivery.key)
        msg["X-Vigil-Idempotency-Key"] = delivery.key
        msg["X-Vigil-Audience"] = delivery.audience
        if delivery.critical:
            # Honoured by most clients for sorting/notification; harmless where ignored.
            msg["X-Priority"] = "1"
            msg["Importance"] = "high"
        # Alerts must not trigger vacation replies back to the ward's sender address.
        msg["Auto-Submitted"] = "auto-generated"
        # base64 for non-ASCII text: an 8bit body needs 8BITMIME on every relay on the way.
        msg.set_content(delivery.body, charset="utf-8", cte=None if delivery.body.isascii() else "base64")
        return msg

    async def send(self, delivery: Delivery) -> SendResult:
        address = delivery.address.strip()
        if not _ADDRESS.match(address):
            raise PermanentFailure(f"not an e-mail address: {address!r}")
        msg = self.build_message(delivery)
        await asyncio.to_thread(self._send_blocking, msg, address)
        log.info("email accepted", extra={"key": delivery.key, "message_id": msg["Message-ID"]})
        return SendResult(provider_id=msg["Message-ID"])

    def _send_blocking(self, msg: EmailMessage, address: str) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(msg, from_addr=self.sender, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _classify(code, reply, "recipient refused") from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, auth, HELO...
            raise _classify(exc.smtp_code, exc.smtp_error, type(exc).__name__) from exc
        except smtplib.SMTPNotSupportedError as exc:  # STARTTLS or AUTH configured, server lacks it
            raise PermanentFailure(f"smtp: {exc}") from exc
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:  # refused, reset, timeout
            raise TemporaryFailure(f"smtp {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        return None  # nothing is held open between messages


def _classify(code: int, reply: bytes | str, what: str) -> PermanentFailure | TemporaryFailure:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    # RFC 5321: 4yz is a transient negative reply (greylisting, mailbox busy), 5yz permanent.
    if 500 <= code < 600:
        return PermanentFailure(f"smtp {code} {what}: {text}")
    return TemporaryFailure(f"smtp {code} {what}: {text}")
