"""A patient's phone for the patient-app tests: signs in with an enrolment code over HTTP (a session
cookie and its CSRF token), and a VAPID key for the runtime's Web Push."""

from __future__ import annotations

import base64

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec


def vapid_private_key() -> str:
    """A fresh VAPID key as VIGIL_VAPID_PRIVATE_KEY takes it: base64url of the raw P-256 scalar."""
    key = ec.generate_private_key(ec.SECP256R1())
    return base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()


class Phone:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def enrol(self, code: str) -> int:
        async with self.http.post(f"{self.base}/api/enrol", json={"code": code}) as r:
            if r.status == 200:
                self.csrf = (await r.json())["csrf_token"]
            return r.status

    async def get(self, path: str) -> tuple[int, object]:
        async with self.http.get(self.base + path) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def post(self, path: str, body: dict, csrf: bool = True) -> tuple[int, object]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        async with self.http.post(self.base + path, json=body, headers=headers) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def close(self) -> None:
        await self.http.close()
