"""Logging in and out, binding a patient's phone, and who am I.

- `POST /api/login` {"username", "password"} (JSON only): a session cookie; failures are rate
  limited per username and per client address (429 with Retry-After).
- `POST /api/logout`: the session ends on the server, the cookie is cleared.
- `POST /api/enrol` {code}: a one-time enrolment code opens a patient session for its patient.
  `GET /enrol` is the phone's page: a form (sent as JSON), which also takes the code from the link's fragment
  (`/enrol#code=...`, never sent to the server).
- `GET /api/me`: the caller, their role, wards and patients, and the session's CSRF token.
- `POST /api/stream-ticket`: a single-use ticket for `GET /api/stream?ticket=` (~60 s).
- `POST /api/enrolment-codes` {patient_id}: a nurse or ward admin issues a code for a patient they see.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from vigil.core.access import Permission
from vigil.core.identity import Principal, Role
from vigil.shell.identity.people import People
from vigil.web.access import COOKIE, SESSION, GATE, may_see, principal_of, require
from vigil.web.params import json_object

ENROL_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Vigil: connect this phone</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head><body>
<h1>Connect this phone</h1><p>Type the code your nurse gave you.</p>
<form id="enrol"><input id="code" name="code" autocomplete="one-time-code" required> <button>Connect</button></form>
<p id="result" role="status"></p>
<script>
const code = new URLSearchParams(location.hash.slice(1)).get("code");
if (code) { document.getElementById("code").value = code; history.replaceState(null, "", location.pathname); }
document.getElementById("enrol").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/enrol", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({code: document.getElementById("code").value})});
  document.getElementById("result").textContent = r.ok ? "Connected." : "That code did not work: ask your nurse for a new one.";
});
</script></body></html>"""


async def _fields(request: web.Request, *names: str) -> dict[str, str]:
    """The named string fields of a JSON object (400 otherwise). JSON only: a cross-site HTML form
    cannot send it, so another site cannot log a browser in to an account of its choosing."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    example = "{" + ", ".join(f'"{n}": "..."' for n in names) + "}"
    body = await json_object(request, dict.fromkeys(names, 512), example)  # bounded: no RecursionError, no 500
    if not all(body.get(n) for n in names):
        raise web.HTTPBadRequest(text=f"required: {', '.join(names)} (strings)")
    return body


def _set_cookie(request: web.Request, response: web.Response, session_id: str, max_age_s: float, people: People) -> None:
    secure = people.settings.cookie_secure
    response.set_cookie(COOKIE, session_id, max_age=int(max_age_s), path="/", httponly=True, samesite="Strict",
                        secure=request.secure if secure is None else secure)


def _me(principal: Principal, csrf: str | None) -> dict[str, Any]:
    return {"subject": principal.subject, "name": principal.name, "role": principal.role.value,
            "wards": sorted(principal.wards), "patients": sorted(principal.patients), "via": principal.via,
            "csrf_token": csrf}


def _throttled(people: People, *keys: str) -> None:
    for key in keys:
        throttle = people.by_username if key.startswith("user:") else people.by_address
        if throttle.blocked(key):
            raise web.HTTPTooManyRequests(text="too many failed attempts: wait and try again",
                                          headers={"Retry-After": str(throttle.retry_after_s(key))})


def session_opener(people: People):
    """`open_session(request, response, principal)` for single sign-on (vigil.web.oidc_routes): a
    server-side session for a Principal the identity provider vouched for, in the same cookie."""

    async def open_session(request: web.Request, response: web.StreamResponse, principal: Principal) -> None:
        session_id, _session = await asyncio.to_thread(people.sessions.open, principal, username=None)
        _set_cookie(request, response, session_id, people.settings.session_max_age_s, people)

    return open_session


def add_login_routes(app: web.Application, people: People) -> None:
    settings = people.settings

    async def login(request: web.Request) -> web.Response:
        fields = await _fields(request, "username", "password")
        user_key, address_key = f"user:{fields['username'].strip().lower()}", f"address:{request.remote}"
        _throttled(people, user_key, address_key)
        account = await asyncio.to_thread(people.accounts.verify, fields["username"], fields["password"])
        if account is None:
            people.by_username.failed(user_key)
            people.by_address.failed(address_key)
            raise web.HTTPUnauthorized(text="wrong username or password")
        people.by_username.succeeded(user_key)
        session_id, session = await asyncio.to_thread(people.sessions.open, account.principal(), username=account.username)
        response = web.json_response(_me(session.principal, session.csrf))
        _set_cookie(request, response, session_id, settings.session_max_age_s, people)
        return response

    async def logout(request: web.Request) -> web.Response:
        cookie = request.cookies.get(COOKIE)
        if SESSION in request and cookie:
            await asyncio.to_thread(people.sessions.close, cookie)
        response = web.json_response({"logged_out": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def enrol(request: web.Request) -> web.Response:
        address_key = f"address:{request.remote}"
        _throttled(people, address_key)
        code = (await _fields(request, "code"))["code"]
        patient_id = await asyncio.to_thread(people.codes.redeem, code) if code.isascii() else None
        if patient_id is None:
            people.by_address.failed(address_key)
            raise web.HTTPUnauthorized(text="unknown, used or expired enrolment code")
        principal = Principal(f"patient:{patient_id}", patient_id, Role.PATIENT, patients=frozenset({patient_id}))
        session_id, session = await asyncio.to_thread(
            people.sessions.open, principal, username=None, max_age_s=settings.patient_session_max_age_s,
            idle_s=settings.patient_session_idle_s)
        response = web.json_response(_me(principal, session.csrf))
        _set_cookie(request, response, session_id, settings.patient_session_max_age_s, people)
        return response

    async def enrol_page(_request: web.Request) -> web.Response:
        return web.Response(text=ENROL_PAGE, content_type="text/html", charset="utf-8")

    async def me(request: web.Request) -> web.Response:
        session = request.get(SESSION)
        return web.json_response(_me(principal_of(request), session.csrf if session else None))

    async def stream_ticket(request: web.Request) -> web.Response:
        ticket = request.app[GATE].tickets.issue(principal_of(request))
        return web.json_response({"ticket": ticket, "expires_in_s": settings.stream_ticket_ttl_s})

    async def enrolment_code(request: web.Request) -> web.Response:
        principal = require(request, Permission.ISSUE_ENROLMENT)
        patient_id = (await _fields(request, "patient_id"))["patient_id"]
        if not may_see(request, Permission.ISSUE_ENROLMENT, patient_id):
            raise web.HTTPNotFound(text="no such patient")
        code = await asyncio.to_thread(people.codes.issue, patient_id, principal.subject)
        return web.json_response({"patient_id": patient_id, "code": code, "expires_in_s": settings.enrolment_code_ttl_s})

    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_post("/api/enrol", enrol)
    app.router.add_get("/enrol", enrol_page)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/stream-ticket", stream_ticket)
    app.router.add_post("/api/enrolment-codes", enrolment_code)
