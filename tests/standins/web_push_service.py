"""A local stand-in for a browser vendor's push service, speaking the Web Push protocol.

Browsers' push services cannot be reached from here, so tests hand Vigil subscriptions whose
endpoints point at this receiver instead. It does what a push service does with a push message,
and what the browser does when it arrives:

- RFC 8030: `POST /push/{id}` with a `TTL` header (refused without one, 400); 201 with a Location;
- RFC 8292 (VAPID): `Authorization: vapid t=<JWT>, k=<public key>`; the JWT must be ES256-signed by
  `k`, for this origin (`aud`), not expired and at most 24 h ahead (`exp`), with a contact (`sub`);
  otherwise 401, and nothing is handed on. If the subscription was made with an
  applicationServerKey, `k` must be that key (403 otherwise);
- RFC 8291: the `aes128gcm` body is decrypted with the subscription's private key and auth secret,
  the way the browser would, and kept in `received` for the test to read;
- a subscription the test marks `gone` answers 404 or 410, as for an unsubscribed browser.

    with WebPushService() as service:
        subscription = service.subscribe()       # {"endpoint", "p256dh", "auth"}
        ...
        service.received  # [{"id", "ttl", "urgency", "text", "vapid_sub"}]
        service.refused   # [(status, reason)]
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_EXP_AHEAD_S = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WebPushService:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.gone: dict[str, int] = {}
        self.received: list[dict[str, Any]] = []
        self.refused: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def subscribe(self, application_server_key: str | None = None) -> dict[str, str]:
        """A new subscription, as PushManager.subscribe() would give the browser."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        ident = secrets.token_urlsafe(12)
        public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        self.subscriptions[ident] = {"key": key, "auth": auth, "server_key": application_server_key}
        return {"endpoint": f"{self.origin}/push/{ident}", "p256dh": b64url(public), "auth": b64url(auth)}

    def make_gone(self, endpoint: str, status: int = 410) -> None:
        self.gone[endpoint.rsplit("/", 1)[1]] = status

    # -- the protocol ----------------------------------------------------------------------------

    def _vapid(self, header: str, subscription: dict[str, Any]) -> str:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(401, "Authorization must be 'vapid t=..., k=...' (RFC 8292)")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, k = fields.get("t"), fields.get("k")
        if not token or not k:
            raise Refused(401, "vapid needs t and k")
        if subscription["server_key"] is not None and k != subscription["server_key"]:
            raise Refused(403, "k is not the applicationServerKey of this subscription")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["exp", "aud", "sub"]})
        except (jwt.PyJWTError, ValueError) as error:
            raise Refused(401, f"VAPID token refused: {type(error).__name__}") from None
        if claims["exp"] > time.time() + MAX_EXP_AHEAD_S:
            raise Refused(401, "exp more than 24 hours ahead")
        return str(claims["sub"])

    def _accept(self, ident: str, headers: Any, body: bytes) -> dict[str, Any]:
        subscription = self.subscriptions.get(ident)
        if subscription is None or ident in self.gone:
            raise Refused(self.gone.get(ident, 404), "no such subscription")
        ttl = headers.get("TTL")
        if ttl is None or not ttl.isdigit():
            raise Refused(400, "TTL header required (RFC 8030 5.2)")
        sub = self._vapid(headers.get("Authorization", ""), subscription)
        if headers.get("Content-Encoding") != "aes128gcm":
            raise Refused(415, "Content-Encoding must be aes128gcm (RFC 8188, 8291)")
        text = http_ece.decrypt(body, private_key=subscription["key"], auth_secret=subscription["auth"],
                                version="aes128gcm").decode("utf-8")
        return {"id": ident, "ttl": int(ttl), "urgency": headers.get("Urgency"), "text": text, "vapid_sub": sub}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/push/"):
                    return self._answer(404, "unknown path")
                try:
                    message = service._accept(self.path[len("/push/"):], self.headers, body)
                except Refused as refused:
                    with service.lock:
                        service.refused.append((refused.status, refused.reason))
                    return self._answer(refused.status, refused.reason)
                with service.lock:
                    service.received.append(message)
                self.send_response(201)
                self.send_header("Location", f"{service.origin}/message/{secrets.token_urlsafe(8)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, status: int, reason: str) -> None:
                data = json.dumps({"error": reason}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> WebPushService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
