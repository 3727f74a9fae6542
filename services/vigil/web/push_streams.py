"""The push channel's HTTP side: `/api/stream` (Server-Sent Events) and `/api/inbox` (polling).

The hub itself (rings per inbox, subscribers) is the in-app push channel in
vigil.shell.notify.channels.push; this module only serves it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable

from aiohttp import web

from vigil.shell.notify.channels.push import SSE_EVENT, PushEvent, PushHub
from vigil.web.audit_trail import note_read, record_now
from vigil.web.params import query_id, whole_number

Authorize = Callable[[web.Request, str], Awaitable[bool]]
Visible = Callable[[web.Request, PushEvent], bool]  # an event of a shared inbox the caller may see


def _everything(_request: web.Request, _event: PushEvent) -> bool:
    return True


def _format_sse(event: PushEvent) -> bytes:
    # json.dumps escapes newlines inside strings, so `data:` is always one line.
    data = json.dumps(event.to_json(), ensure_ascii=False, default=str)
    return f"id: {event.id}\nevent: {SSE_EVENT}\ndata: {data}\n\n".encode("utf-8")


def _patients(events: list[PushEvent]) -> set[str | None]:
    """The patients whose incidents these events are about (for the access audit)."""
    return {(e.payload.get("incident") or {}).get("patient_id") for e in events}


def _int_or_none(value: str | None) -> int | None:
    return whole_number(value, "the event id", low=0, high=2**63 - 1)


async def _inbox_of(request: web.Request, authorize: Authorize | None) -> str:
    inbox = query_id(request, "inbox", required=True)
    assert inbox is not None
    if authorize is not None and not await authorize(request, inbox):
        raise web.HTTPForbidden(text="not your inbox")
    return inbox


def sse_handler(hub: PushHub, keepalive_s: float = 15.0, authorize: Authorize | None = None,
                visible: Visible = _everything) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`GET /api/stream?inbox=<id>`: replay after `Last-Event-ID` (header, or `last_event_id`
    query for clients that cannot set headers), then stream live events (those `visible`)."""

    async def stream(request: web.Request) -> web.StreamResponse:
        inbox = await _inbox_of(request, authorize)
        last_id = _int_or_none(request.headers.get("Last-Event-ID") or request.query.get("last_event_id"))
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx would otherwise buffer the stream
        })
        # Subscribe before reading the ring, with no await in between: nothing published in the
        # gap can be missed, and ids seen in the replay are skipped when they arrive live.
        subscription = hub.subscribe(inbox)
        backlog = hub.events(inbox, after=last_id) if last_id is not None else []
        try:
            note_read(request, "open stream", _patients(backlog), inbox)
            await record_now(request)  # the stream answers until it closes: recorded as it opens
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n")
            if last_id is not None and hub.has_gap(inbox, last_id):
                # The client should reload its alert list: some events can no longer be replayed.
                await response.write(f"event: gap\ndata: {json.dumps({'after': last_id})}\n\n".encode())
            sent = last_id or 0
            for event in backlog:
                if visible(request, event):
                    await response.write(_format_sse(event))
                sent = event.id
            while True:
                try:
                    event = await subscription.get(timeout=keepalive_s)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")  # keeps proxies from closing an idle stream
                    continue
                if event is None:  # dropped as too slow, or the hub closed: the client reconnects
                    break
                if event.id > sent:
                    if visible(request, event):
                        await response.write(_format_sse(event))
                    sent = event.id
        except ConnectionResetError:
            pass  # the client went away; noticed on the next write (a keep-alive at the latest)
        finally:
            subscription.close()
        return response

    return stream


def inbox_handler(hub: PushHub, authorize: Authorize | None = None,
                  visible: Visible = _everything) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /api/inbox?inbox=<id>&after=<id>`: what the ring holds, for polling clients.
    `gap` is true when events after `after` may have been pushed out of the ring already."""

    async def inbox_view(request: web.Request) -> web.Response:
        inbox = await _inbox_of(request, authorize)
        after = _int_or_none(request.query.get("after"))
        events = [event for event in hub.events(inbox, after=after) if visible(request, event)]
        gap = after is not None and hub.has_gap(inbox, after)
        note_read(request, "read inbox", _patients(events), inbox)
        return web.json_response({"inbox": inbox, "events": [e.to_json() for e in events], "gap": gap},
                                 dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

    return inbox_view


def add_push_routes(app: web.Application, hub: PushHub, authorize: Authorize | None = None,
                    keepalive_s: float = 15.0, visible: Visible = _everything) -> None:
    """Mount `/api/stream` and `/api/inbox`. `authorize(request, inbox)` decides who may read an
    inbox (the runtimes: a person only their own, vigil.core.access); `visible(request, event)`
    which events of it (the shared console inbox: only the caller's patients)."""
    app.router.add_get("/api/stream", sse_handler(hub, keepalive_s=keepalive_s, authorize=authorize, visible=visible))
    app.router.add_get("/api/inbox", inbox_handler(hub, authorize=authorize, visible=visible))
