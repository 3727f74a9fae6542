"""The access audit's HTTP side: handlers note what patient data they answer with, and a
middleware writes those notes, with who asked and how it ended, once the handler is done.

Handlers call `note_read(request, "read incidents", patient_ids)` (or `note_action` for
acknowledge and resolve); the middleware (`add_audit_trail`) takes the caller from
`request[PRINCIPAL]` (set by the authentication middleware, vigil.web.access; "anonymous" without one), the
outcome from the status answered, and appends one row per note (naming every patient it showed:
a list of 200 incidents is one row, not 200) through `AuditTrail.record`, off the event loop. A request that notes nothing writes nothing (/healthz, /metrics), except a
refusal (403), recorded with its method and path. A push stream answers for as long as it is
open, so its handler writes its note itself, before the first byte (`record_now`).

Fail closed: patient data whose reading could not be recorded is not sent (503 with a reason).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from vigil.shell.stores.access_audit import AuditTrail, outcome_of
from vigil.web.access import PRINCIPAL

log = logging.getLogger("vigil.audit")

AUDIT_TRAIL = web.AppKey("vigil.audit_trail", AuditTrail)
_NOTES: Any = web.RequestKey("vigil.audit.notes", list) if hasattr(web, "RequestKey") else "vigil.audit.notes"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def note_read(request: web.Request, action: str, patient_ids: Iterable[str | None], target: str = "") -> None:
    """Note that this request answers with these patients' data ("read alerts", "read incident")."""
    request.setdefault(_NOTES, []).append((action, list(patient_ids), target))


def note_action(request: web.Request, action: str, patient_id: str | None, target: str) -> None:
    """Note a clinician's action (acknowledge, resolve) on one patient's incident; its outcome is the status."""
    note_read(request, action, [patient_id], target)


async def record_now(request: web.Request, status: int = 200) -> None:
    """Write this request's notes now (a push stream, before it starts streaming); 503 if they cannot be."""
    await _write_or_withhold(request, status)


async def _write_notes(request: web.Request, status: int) -> None:
    notes: list[tuple[str, list[str | None], str]] = request.pop(_NOTES, [])
    trail = request.app.get(AUDIT_TRAIL)
    if trail is None:
        return
    if not notes and status == 403:
        notes = [("refused", [], f"{request.method} {request.rel_url.path}")]
    principal: Any = request.get(PRINCIPAL)
    for action, patient_ids, target in notes:
        await trail.record(principal, action, patient_ids, target, outcome_of(status), request.remote, status)


def audit_middleware() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Write what the handler noted once it has answered (or refused)."""

    @web.middleware
    async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as refused:
            await _write_quietly(request, refused.status)
            raise
        except Exception:
            await _write_quietly(request, 500)
            raise
        await _write_or_withhold(request, response.status)
        return response

    return audit


async def _write_or_withhold(request: web.Request, status: int) -> None:
    """Write the notes of an answer that shows patient data; if that fails, the data is not sent (503)."""
    try:
        await _write_notes(request, status)
    except Exception:
        log.exception("access audit not written: the answer is withheld", extra={"path": request.rel_url.path})
        raise web.HTTPServiceUnavailable(text="the access audit could not be written, so nothing is shown; "
                                              "try again") from None


async def _write_quietly(request: web.Request, status: int) -> None:
    """A refusal or an error sent no patient data: its record failing must not hide the reason."""
    try:
        await _write_notes(request, status)
    except Exception:
        log.exception("access audit not written for a refused request", extra={"path": request.rel_url.path})


def add_audit_trail(app: web.Application, trail: AuditTrail) -> None:
    """Mount the audit middleware on `app` (before the app starts: middlewares freeze with it)."""
    app[AUDIT_TRAIL] = trail
    app.middlewares.append(audit_middleware())
