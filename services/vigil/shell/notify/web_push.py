"""Web Push (RFC 8030, VAPID RFC 8292, aes128gcm RFC 8291) to a patient's phones, with `pywebpush`.

An alert's patient text is encrypted for each subscription the patient's browsers registered and
POSTed to the browser vendor's push service, which hands it to the phone even with the app closed;
the app's service worker shows it as a notification. A push service answering 404 or 410 says the
subscription is gone for good: it is forgotten. Any other failure is logged (without the key) and
left to the next alert; the in-app inbox and the other channels carry the message regardless.

The VAPID private key is a secret (VIGIL_VAPID_PRIVATE_KEY or VIGIL_VAPID_PRIVATE_KEY_FILE): it is
held in a `Vapid` object and never logged. Its public half is the `applicationServerKey` the app
subscribes with (`public_key`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from vigil.shell.stores.patient_app_store import PatientAppStore

log = logging.getLogger("vigil.notify.web_push")
GONE = (404, 410)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class WebPushSender:
    def __init__(self, private_key: str, subject: str, store: PatientAppStore, *, ttl_s: int = 86400,
                 timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self._vapid = Vapid.from_string(private_key.strip())
        self.subject, self.store, self.ttl_s, self.timeout_s, self.clock = subject, store, ttl_s, timeout_s, clock
        self._session: aiohttp.ClientSession | None = None
        self.sent = self.gone = self.failed = 0

    def __repr__(self) -> str:  # never the key
        return f"WebPushSender(subject={self.subject!r})"

    def public_key(self) -> str:
        """The applicationServerKey: the uncompressed P-256 point, base64url."""
        point = self._vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        return b64url(point)

    async def push_to_patient(self, patient_id: str, message: dict[str, Any]) -> int:
        """Push `message` (title, body, tag, url) to every subscription of the patient; how many took it."""
        subscriptions = await asyncio.to_thread(self.store.subscriptions, patient_id)
        delivered = 0
        for subscription in subscriptions:
            if await self._push_one(subscription, message):
                delivered += 1
        return delivered

    async def _push_one(self, subscription: dict[str, Any], message: dict[str, Any]) -> bool:
        endpoint = subscription["endpoint"]
        info = {"endpoint": endpoint, "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            await webpush_async(info, json.dumps(message, ensure_ascii=False), vapid_private_key=self._vapid,
                                vapid_claims={"sub": self.subject}, ttl=self.ttl_s, timeout=self.timeout_s,
                                headers={"Urgency": "high"}, aiohttp_session=self._session)
        except WebPushException as refused:
            status = getattr(refused.response, "status", None) or getattr(refused.response, "status_code", None)
            if status in GONE:
                self.gone += 1
                await asyncio.to_thread(self.store.unsubscribe, endpoint)
                log.info("push subscription gone: forgotten", extra={"patient_id": subscription["patient_id"],
                                                                     "status": status})
            else:
                self.failed += 1
                log.warning("web push refused", extra={"patient_id": subscription["patient_id"], "status": status})
            return False
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            self.failed += 1
            log.warning("web push not delivered", extra={"patient_id": subscription["patient_id"],
                                                         "error": type(error).__name__})
            return False
        self.sent += 1
        await asyncio.to_thread(self.store.pushed, endpoint, self.clock())
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
