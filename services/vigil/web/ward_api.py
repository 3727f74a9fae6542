"""The ward workspace's API: the ward overview and one patient's page.

`GET /api/ward[?ward=&severity=&unacknowledged=1]`: one row per patient of the caller's wards,
sickest first (vigil.web.ward_rows). `GET /api/patients/{patient_id}[?span=1h|24h|7d]`: the
patient page (vigil.web.patient_view); another ward's patient, or one not in the roster, answers
404 (no existence leak). Both are for nurses and physicians (others: 403); both are audited like every read of patient data (the overview names every patient it
showed, in one row). The trend and desk queries run off the event loop.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from vigil.core.access import CONSOLE_ROLES, Permission
from vigil.core.events import SEVERITY_RANK
from vigil.web.access import may_see, patients_in_scope, require
from vigil.web.audit_trail import note_read
from vigil.web.json import dumps
from vigil.web.params import one_of, path_id, query_id
from vigil.web.patient_view import SPANS, patient_page
from vigil.web.ward_rows import live_coverage, ward_rows
from vigil.web.ward_source import WardSource


def _patients(request: web.Request, source: WardSource) -> list[tuple[str, str]]:
    """The roster's patients the caller sees, with their wards, in roster order."""
    scope = patients_in_scope(request)
    return [(p.patient_id, p.ward) for p in source.registry.patients() if scope is None or p.patient_id in scope]


def _clinician(request: web.Request) -> None:
    """The workspace is the ward's: nurses and physicians (core.access.CONSOLE_ROLES). A patient or
    a carer has the patient app; a service has the incident API."""
    principal = require(request, Permission.READ_VITALS)
    require(request, Permission.READ_INCIDENTS)
    if principal.role not in CONSOLE_ROLES:
        raise web.HTTPForbidden(text=f"the ward workspace is for nurses and physicians, not a {principal.role.value}")


def add_ward_routes(app: web.Application, source: WardSource) -> None:
    async def ward(request: web.Request) -> web.Response:
        _clinician(request)
        severity = one_of(request, "severity", tuple(SEVERITY_RANK))
        unacknowledged = request.query.get("unacknowledged", "") in ("1", "true", "yes")
        chosen = query_id(request, "ward")
        seen = _patients(request, source)
        patient_ids = [p for p, w in seen if chosen is None or w == chosen]
        now = source.clock()
        started = time.perf_counter()
        live = live_coverage(source, patient_ids, now)
        rows = await asyncio.to_thread(ward_rows, source, patient_ids, now, live, severity=severity,
                                       unacknowledged=unacknowledged)
        note_read(request, "read ward", (row["patient_id"] for row in rows))
        body = dumps({"now": now, "rows": rows, "wards": sorted({w for _, w in seen}), "grafana": bool(source.grafana_url)})
        took = (time.perf_counter() - started) * 1000  # what the server spent: `vigil bench ward` reports it
        return web.Response(text=body, content_type="application/json", headers={"Server-Timing": f"ward;dur={took:.1f}"})

    async def patient(request: web.Request) -> web.Response:
        _clinician(request)
        patient_id = path_id(request, "patient_id")
        span = one_of(request, "span", tuple(SPANS)) or "24h"
        if source.registry.profile(patient_id) is None or not may_see(request, Permission.READ_VITALS, patient_id):
            note_read(request, "read patient", [None], patient_id)  # a miss is audited too: probing is worth seeing
            raise web.HTTPNotFound(text="no such patient")
        now = source.clock()
        page = await asyncio.to_thread(patient_page, source, patient_id, span, now,
                                       live_coverage(source, [patient_id], now))
        note_read(request, "read patient", [patient_id], patient_id)
        return web.json_response(page, dumps=dumps)

    app.router.add_get("/api/ward", ward)
    app.router.add_get("/api/patients/{patient_id}", patient)
