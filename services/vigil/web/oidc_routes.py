"""Single sign-on for the ward console: GET /auth/oidc/login and GET /auth/oidc/callback.

The login keeps its state, nonce and PKCE code verifier here, server-side and single-use, keyed
by the random `state`; the browser gets only an HttpOnly, SameSite=Lax, ten-minute cookie that
binds the callback to the browser that started the login (login CSRF). The code verifier never
appears in a URL. After a verified login, `open_session(request, response, principal)` (the
session store's, injected by the runtime) makes the Principal the browser's.

Every refusal answers 4xx with a reason (an unreachable identity provider: 502), never a token.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Union

import httpx
from aiohttp import web

from vigil.core.identity import Principal
from vigil.shell.identity.oidc import AuthorizationCodeFlow, LoginAttempt, OidcRefused

log = logging.getLogger(__name__)

OpenSession = Callable[[web.Request, web.StreamResponse, Principal], Union[Awaitable[None], None]]
BINDING_COOKIE = "vigil_oidc_login"
_PARAM = re.compile(r"[A-Za-z0-9._~+/=-]{1,2048}")


class LoginAttempts:
    """Logins in flight: bounded, expiring, each taken at most once."""

    def __init__(self, ttl_s: float = 600.0, max_pending: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self._pending: OrderedDict[str, LoginAttempt] = OrderedDict()

    def put(self, attempt: LoginAttempt) -> None:
        self._expire()
        while len(self._pending) >= self.max_pending:
            self._pending.popitem(last=False)
        self._pending[attempt.state] = attempt

    def take(self, state: str) -> LoginAttempt | None:
        self._expire()
        attempt = self._pending.pop(state, None)
        if attempt is None or time.monotonic() - attempt.started_at >= self.ttl_s:
            return None
        return attempt

    def _expire(self) -> None:
        now = time.monotonic()
        while self._pending:
            state, oldest = next(iter(self._pending.items()))
            if now - oldest.started_at < self.ttl_s:
                break
            del self._pending[state]


def add_oidc_routes(app: web.Application, flow: AuthorizationCodeFlow, open_session: OpenSession, *,
                    after_login: str = "/", attempts: LoginAttempts | None = None, secure_cookie: bool = True) -> None:
    """Add the single sign-on login and callback to `app`."""
    pending = attempts or LoginAttempts()

    async def login(_request: web.Request) -> web.StreamResponse:
        try:
            url, attempt = await flow.begin()
        except (OidcRefused, httpx.HTTPError) as exc:
            return _idp_failure(exc)
        pending.put(attempt)
        response = web.Response(status=302, headers={"Location": url})
        response.set_cookie(BINDING_COOKIE, attempt.browser_binding, max_age=int(pending.ttl_s), path="/auth/oidc",
                            httponly=True, secure=secure_cookie, samesite="Lax")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def callback(request: web.Request) -> web.StreamResponse:
        query = request.query
        if "error" in query:
            code = query.get("error", "")
            shown = code if re.fullmatch(r"[a-z_]{1,40}", code) else "unknown"
            return _refuse(400, f"the identity provider did not log you in ({shown})")
        state, code = query.get("state", ""), query.get("code", "")
        if not _PARAM.fullmatch(state) or not _PARAM.fullmatch(code):
            return _refuse(400, "the callback needs a state and a code")
        attempt = pending.take(state)
        if attempt is None:
            return _refuse(400, "unknown, expired or already used login state: start the login again")
        binding = request.cookies.get(BINDING_COOKIE, "")
        if not hmac.compare_digest(binding.encode("utf-8", "replace"), attempt.browser_binding.encode()):
            return _refuse(400, "this login was started in another browser: start the login again")
        try:
            principal = await flow.finish(code, attempt)
        except OidcRefused as refused:
            log.info("single sign-on refused: %s", refused.reason)
            return _refuse(403 if refused.forbidden else 400, refused.reason)
        except httpx.HTTPError as exc:
            return _idp_failure(exc)
        response = web.Response(status=302, headers={"Location": after_login})
        response.del_cookie(BINDING_COOKIE, path="/auth/oidc")
        response.headers["Cache-Control"] = "no-store"
        opened = open_session(request, response, principal)
        if inspect.isawaitable(opened):
            await opened
        log.info("single sign-on: %s (%s) logged in", principal.subject, principal.role.value)
        return response

    app.router.add_get("/auth/oidc/login", login)
    app.router.add_get("/auth/oidc/callback", callback)


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers={"Cache-Control": "no-store"})


def _idp_failure(exc: Exception) -> web.Response:
    if isinstance(exc, OidcRefused):
        log.warning("identity provider misconfigured: %s", exc.reason)
        return _refuse(502, "the identity provider's configuration was refused")
    log.warning("identity provider unreachable: %s", type(exc).__name__)
    return _refuse(502, "the identity provider is unreachable")
