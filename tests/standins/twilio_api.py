"""A local stand-in for Twilio's Messages API, speaking its wire format.

Twilio is paid SaaS, so tests talk to this instead: `POST /2010-04-01/Accounts/{sid}/Messages.json`
with a form-encoded To/From/Body (or MessagingServiceSid), HTTP basic auth, answered by a
Twilio-shaped message resource (201) or a Twilio-shaped error. Failures are scripted per request:

    with TwilioStandIn("AC...", "token") as twilio:
        twilio.fail_next(2, status=500)        # the next two requests get 500
        twilio.fail_next(1, status=400, code=21211)
        twilio.hang_next(1, seconds=3)         # answers (and accepts) only after 3 s
        ...
        twilio.messages  # every accepted message resource, in order
        twilio.requests  # every request: method, path, headers, form
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

API_VERSION = "2010-04-01"

# Twilio's documented error codes for the failures tests script.
_ERRORS: dict[int, tuple[int, str]] = {
    400: (21211, "The 'To' number is not a valid phone number."),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service unavailable"),
}

# GSM 03.38 basic character set: messages in it take 160 characters a segment, others (UCS-2) 70.
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")


def num_segments(body: str) -> int:
    if all(ch in _GSM7 for ch in body):
        single, multi = 160, 153
    else:
        single, multi = 70, 67
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


@dataclass
class _Script:
    status: int | None = None  # an error status to answer with, or None
    code: int | None = None
    message: str | None = None
    hang_s: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    t: float = field(default_factory=time.time)


class TwilioStandIn:
    """A threaded HTTP server on 127.0.0.1 (port chosen by the OS); a context manager."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self._script: deque[_Script] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------------
    def fail_next(self, n: int, status: int, code: int | None = None, message: str | None = None) -> None:
        default_code, default_message = _ERRORS.get(status, (20000 + status, "Error"))
        with self._lock:
            self._script.extend(_Script(status, code or default_code, message or default_message) for _ in range(n))

    def hang_next(self, n: int, seconds: float) -> None:
        """The next n requests are answered (normally) only after `seconds`: a slow provider that
        did accept the message, the case that makes a client-side timeout produce a duplicate."""
        with self._lock:
            self._script.extend(_Script(hang_s=seconds) for _ in range(n))

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "TwilioStandIn":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True  # a hanging request must not block shutdown
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="twilio-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "TwilioStandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API -------------------------------------------------------------------------------
    def _next_script(self) -> _Script | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _create_message(self, account_sid: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, from_, body = form.get("To", ""), form.get("From"), form.get("Body")
        service = form.get("MessagingServiceSid")
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            return 400, _error(21211, f"The 'To' number {to} is not a valid phone number.", 400)
        if not from_ and not service:
            return 400, _error(21603, "A 'From' phone number is required.", 400)
        if not body:
            return 400, _error(21602, "Message body is required.", 400)
        if len(body) > 1600:
            return 400, _error(21617, "The concatenated message body exceeds the 1600 character limit.", 400)
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        resource = {
            "account_sid": account_sid, "api_version": API_VERSION, "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": from_, "messaging_service_sid": service, "num_media": "0",
            "num_segments": str(num_segments(body)), "price": None, "price_unit": "USD",
            "sid": sid, "status": "queued" if from_ else "accepted", "to": to,
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"},
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json",
        }
        with self._lock:
            self.messages.append(resource)
        return 201, resource


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def _handler_for(standin: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    prefix = f"/{API_VERSION}/Accounts/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp and requests expect

        def log_message(self, *_args: object) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            with standin._lock:
                standin.requests.append(RecordedRequest("POST", self.path, dict(self.headers.items()), form))
            script = standin._next_script()
            if script and script.hang_s:
                time.sleep(script.hang_s)
            if not standin._authorised(self.headers.get("Authorization")):
                self._reply(401, {**_error(20003, "Authenticate", 401),
                                  "detail": "Your AccountSid or AuthToken was incorrect."})
                return
            if script and script.status:
                self._reply(script.status, _error(script.code or 0, script.message or "", script.status))
                return
            account, _, rest = self.path.partition("?")[0].removeprefix(prefix).partition("/")
            if not self.path.startswith(prefix) or rest != "Messages.json":
                self._reply(404, _error(20404, "The requested resource was not found", 404))
                return
            if account != standin.account_sid:
                self._reply(404, _error(20404, f"The requested resource /Accounts/{account} was not found", 404))
                return
            self._reply(*standin._create_message(account, form))

        def _reply(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
            self.end_headers()
            self.wfile.write(data)

    return Handler
