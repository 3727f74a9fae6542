"""Who is asking, on every request: the authentication middleware and the policy's HTTP helpers.

Every request is authenticated before its handler runs, except an explicit public allow-list
(health, metrics without patient data, the login and enrolment endpoints, pages without data).
A caller is one of:

- a session cookie (`vigil_session`: HttpOnly, SameSite=Strict, Secure over TLS, path /);
  state-changing requests must then carry the session's CSRF token in `X-CSRF-Token`;
- `Authorization: Bearer <token>`, checked by the `BearerVerifier`s the runtime plugs in (the
  service token VIGIL_API_TOKEN; OpenID Connect access tokens): no CSRF, a browser never sends it
  by itself;
- `GET /api/stream?ticket=`: a single-use ticket from `POST /api/stream-ticket`.

Credentials never travel in URLs: a query naming one (`access_token`, `token`, `code`, ...) is
refused. Malformed or non-ASCII credentials answer 401, never 500. What the caller may then see
is `vigil.core.access`'s; handlers ask through `require`, `may_see` and `patients_in_scope`.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from vigil.core.access import ALL_WARDS, Permission, Scope, SCOPE, allowed, permits
from vigil.core.identity import Principal, Role
from vigil.shell.identity.sessions import Session, Sessions, StreamTickets, csrf_ok

COOKIE = "vigil_session"
CSRF_HEADER = "X-CSRF-Token"
PRINCIPAL = web.RequestKey("vigil.principal", Principal)  # request[PRINCIPAL]: the authenticated caller
SESSION = web.RequestKey("vigil.session", Session)  # request[SESSION]: the Session, when authenticated by cookie
OIDC_CALLBACK = "/auth/oidc/callback"
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/console", "/enrol", "/app", "/api/login", "/api/enrol",
                          "/auth/oidc/login", "/auth/oidc/callback", "/ward", "/ward/patient"})
# Shipped files, never patient data, GET only: the ward workspace's scripts and styles
# (vigil.web.ward_pages) and the patient app's pages and scripts (vigil.web.patient_app).
PUBLIC_PREFIXES = ("/static/", "/app/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Query parameters that would put a credential in a URL (logs, history, Referer): always refused.
CREDENTIAL_PARAMS = frozenset({"access_token", "token", "api_token", "session", "password", "code", "id_token"})
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/=-]{8,4096}")
_SESSION_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")


class BearerVerifier(Protocol):
    """Turns a bearer token into a Principal, or None when the token is not valid (the OpenID
    Connect verifier plugs in here; so does the service token)."""

    def verify(self, token: str) -> Principal | None: ...


class ServiceToken:
    """VIGIL_API_TOKEN as a service principal: reads every ward (grant "*"), never acts."""

    def __init__(self, token: str, name: str = "api-token") -> None:
        self.token, self.name = token.encode("utf-8"), name

    def verify(self, token: str) -> Principal | None:
        if not hmac.compare_digest(token.encode("utf-8"), self.token):
            return None
        return Principal(f"service:{self.name}", f"service {self.name}", Role.SERVICE, frozenset({ALL_WARDS}),
                         via="bearer")


@dataclass
class Gate:
    """What the middleware and the handlers need: sessions, tickets, bearer verifiers, and where
    each patient belongs (the roster's wards)."""

    sessions: Sessions
    tickets: StreamTickets
    ward_of: Callable[[str], str | None]
    patients_of_wards: Callable[[Iterable[str]], frozenset[str]]
    verifiers: list[BearerVerifier] = field(default_factory=list)
    cookie_secure: bool | None = None


GATE = web.AppKey("vigil.gate", Gate)


def unauthorized(reason: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=reason, headers={"WWW-Authenticate": 'Bearer realm="vigil"'})


def _refuse_credentials_in_url(request: web.Request) -> None:
    named = CREDENTIAL_PARAMS.intersection(request.query)
    if named:
        raise web.HTTPBadRequest(text=f"credentials never go in URLs ({', '.join(sorted(named))}): use the session "
                                      "cookie, an Authorization header, or a stream ticket")


async def _bearer(request: web.Request, gate: Gate, header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.isascii() or not _TOKEN_SHAPE.fullmatch(token):
        raise unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    for verifier in gate.verifiers:
        averify = getattr(verifier, "averify", None)  # one that may fetch keys does it off the event loop
        principal = await averify(token) if averify is not None else verifier.verify(token)
        if principal is not None:
            return principal
    raise unauthorized("invalid bearer token")


async def _cookie(request: web.Request, gate: Gate, value: str) -> tuple[Principal, Session]:
    if not value.isascii() or not _SESSION_SHAPE.fullmatch(value):
        raise unauthorized("malformed session cookie")
    session = gate.sessions.cached(value) or await asyncio.to_thread(gate.sessions.find, value)
    if session is None:
        raise unauthorized("session expired or unknown: log in again")
    if request.method not in SAFE_METHODS and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise web.HTTPForbidden(text=f"missing or wrong {CSRF_HEADER} (GET /api/me gives it)")
    return session.principal, session


async def _authenticate(request: web.Request, gate: Gate) -> Principal:
    header = request.headers.get("Authorization")
    if header is not None:
        return await _bearer(request, gate, header)
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        principal, request[SESSION] = await _cookie(request, gate, cookie)
        return principal
    ticket = request.query.get("ticket")
    if ticket is not None and request.path == "/api/stream" and request.method == "GET":
        principal = gate.tickets.redeem(ticket) if ticket.isascii() else None
        if principal is None:
            raise unauthorized("stream ticket unknown, used or expired")
        return principal
    raise unauthorized("authentication required: log in, or send Authorization: Bearer <token>")


@web.middleware
async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    if request.path != OIDC_CALLBACK:  # the one URL that carries a code by design: single use, PKCE-bound
        _refuse_credentials_in_url(request)
    if request.path in PUBLIC_PATHS or (request.method in SAFE_METHODS and request.path.startswith(PUBLIC_PREFIXES)):
        return await handler(request)
    request[PRINCIPAL] = await _authenticate(request, request.app[GATE])
    return await handler(request)


def install(app: web.Application, gate: Gate) -> None:
    """Authenticate every request of `app` (call once, before the app starts)."""
    app[GATE] = gate
    app.middlewares.append(authenticate)


# -- what handlers ask -----------------------------------------------------------------------------

def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def require(request: web.Request, permission: Permission) -> Principal:
    """The caller, if their role may do `permission` at all; else 403."""
    principal = request[PRINCIPAL]
    if not permits(principal, permission):
        raise web.HTTPForbidden(text=f"a {principal.role.value} may not {permission.value}")
    return principal


def may_see(request: web.Request, permission: Permission, patient_id: str | None) -> bool:
    """Role and patient scope together (handlers answer 404 when not: no existence leak)."""
    return allowed(request[PRINCIPAL], permission, patient_id, request.app[GATE].ward_of(patient_id) if patient_id else None)


def patients_in_scope(request: web.Request) -> frozenset[str] | None:
    """The patient ids the caller sees, for list queries; None: every patient (a service's "*")."""
    principal: Principal = request[PRINCIPAL]
    scope = SCOPE[principal.role]
    if scope in (Scope.SELF, Scope.LINKED):
        return principal.patients
    if scope is Scope.GRANT and ALL_WARDS in principal.wards:
        return None
    wards = principal.wards - {ALL_WARDS}
    return request.app[GATE].patients_of_wards(wards) | (principal.patients if scope is Scope.GRANT else frozenset())
