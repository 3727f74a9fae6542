"""Hostile requests get clean answers: a 4xx with a reason, never a 5xx.

Walks EVERY route the embedded runtime's (and the notifier's) HTTP app registers, found by
introspecting app.router, so a route added later is walked too: bad query values, hostile path
parameters, bodies that are not JSON or not the expected shape (a list, a string, nested junk,
lone surrogates, 50 000 levels of nesting, 10 MB), bytes that are not UTF-8 in headers, and
non-ASCII Authorization headers and cookies. /healthz alone may answer 503: the runtime under
test is not started, and "down" is its true answer (with a JSON reason). The walk goes as a
logged-in physician (session cookie and CSRF header), or with the service token, so that the
hostile values reach the handlers and not only the authentication middleware.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import ClientError, web
from aiohttp.test_utils import TestClient, TestServer

from vigil.core.identity import Role
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry

QUERY_NAMES = ("limit", "state", "patient_id", "inbox", "after", "last_event_id", "access_token", "since")
QUERY_VALUES = ("abc", "-1", "1e9", "0", "1" + "0" * 40, "", "%00", "%ff%fe", "x" * 3000, "%C3%A9", "%E2%80%AE",
                "open'%20OR%20'1'='1", "1.5", "%D9%A1%D9%A2", "1_000", "%20%207")
PATH_VALUES = ("x" * 200, "x" * 6000, "%00", "%ff%fe", "..%2F..%2Fetc%2Fpasswd", "%E2%80%AE", "%C3%A9" * 60,
               "'%20OR%201=1%20--", "in-%0Ain-2")
BODIES = (b"not json", b"[1, 2]", b'"a string"', b"123", b"null", b'{"actor": {"$ne": null}}', b'{"actor": ["x"]}',
          b'{"actor": "x", "note": {"a": [1, {"b": 2}]}}', b"[" * 50_000, b"{" * 50_000, b"\xff\xfe\x00garbage",
          b'{"actor": "\\ud800"}', b'{"actor": 42}', b"", b'{"actor": "' + "\u00e9".encode() * 3000 + b'"}')
HEADERS = ({"Authorization": "Bearer \u00eb\u00eb\u00eb"}, {"Authorization": "Bearer \U0001f511"},
           {"Authorization": "\u00e9"}, {"Cookie": "vigil_session=\u00fc\u00fc; csrf=\u2603"},
           {"Cookie": "=; ;;; a"}, {"Last-Event-ID": "\u0661\u0662"}, {"Last-Event-ID": "9" * 40},
           {"Content-Type": "application/json; charset=no-such-charset"}, {"X-Forwarded-For": "\u00e9" * 500})
RAW_HEADERS = (b"Authorization: Bearer \xff\xfe\xfd", b"Cookie: s=\xff\xc3\x28", b"Last-Event-ID: \xff",
               b"Authorization: Bearer " + b"\xe9" * 4000)
TEN_MB = b'{"actor": "' + b"x" * (10 * 1024 * 1024) + b'"}'


def runtime_app(kind: str, tmp_path):
    if kind.startswith("embedded"):
        from vigil.runtimes.embedded.runtime import EmbeddedRuntime

        token = "s3cret" if kind.endswith("token") else None  # the bearer check runs on the hostile headers too
        runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False, api_token=token), Registry())
        return runtime.alerting, runtime.skeleton.app(), runtime.alerting.hub, runtime.stop
    from vigil.runtimes.notifier.notifier import Notifier

    notifier = Notifier(VigilSettings(data_dir=tmp_path), Registry())
    return notifier.service, notifier.skeleton.app(), notifier.service.hub, notifier.service.stop


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route but the HEADs aiohttp adds for each GET."""
    found = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    return sorted(found)


def fill(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


async def credentials(kind: str, service, client: TestClient) -> dict[str, str]:
    """The headers of a logged-in physician (session cookie, CSRF token), or of the service token."""
    if kind.endswith("token"):
        return {"Authorization": "Bearer s3cret"}
    service.people.accounts.add("dr.walk", Role.PHYSICIAN, wards=["ward"], password="a long walk password")
    async with client.post("/api/login", json={"username": "dr.walk", "password": "a long walk password"}) as response:
        assert response.status == 200, await response.text()
        csrf = (await response.json())["csrf_token"]
        return {"Cookie": f"vigil_session={response.cookies['vigil_session'].value}", "X-CSRF-Token": csrf}


class Walk:
    def __init__(self, client: TestClient, auth: dict[str, str] | None = None) -> None:
        self.client = client
        self.auth = auth or {}
        self.answers: list[tuple[str, str, int, str]] = []

    async def send(self, method: str, path: str, **kwargs) -> None:
        kwargs["headers"] = {**self.auth, **(kwargs.get("headers") or {})}  # a hostile header replaces its own kind
        try:
            async with self.client.request(method, path, skip_auto_headers=("Content-Type",), **kwargs) as response:
                reason = "" if response.content_type == "text/event-stream" else await response.text()
                self.answers.append((method, path[:80], response.status, reason))
        except ClientError as exc:  # only a 10 MB body may be cut off by the server, once refused
            self.answers.append((method, path[:80], 413 if kwargs.get("data") is TEN_MB else 599, repr(exc)))

    async def raw(self, method: str, path: str, header: bytes) -> None:
        reader, writer = await asyncio.open_connection(self.client.host, self.client.port)
        auth = b"".join(f"{name}: {value}\r\n".encode() for name, value in self.auth.items()
                        if not header.lower().startswith(name.lower().encode() + b":"))
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".encode() + auth + header
                     + b"\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        head, _, body = (await asyncio.wait_for(reader.read(65536), 10)).partition(b"\r\n\r\n")
        streaming = b"text/event-stream" in head
        if not streaming:
            body += await asyncio.wait_for(reader.read(), 10)  # Connection: close: the rest, to the end
        writer.close()
        self.answers.append((method, path[:80], int(status_line.split()[1]), "stream" if streaming else body.decode()))

    def failures(self) -> list[tuple[str, str, int, str]]:
        """5xx anywhere (but the unstarted runtime's /healthz), and 4xx without a reason."""
        return [a for a in self.answers
                if (a[2] >= 500 and not (a[1].startswith("/healthz") and a[2] == 503 and '"down"' in a[3]))
                or (400 <= a[2] < 500 and not a[3].strip())]


@pytest.mark.parametrize("kind", ["embedded", "embedded with a token", "notifier"])
async def test_every_route_answers_hostile_input_with_a_4xx_and_a_reason_never_a_5xx(kind, tmp_path):
    service, app, hub, stop = runtime_app(kind, tmp_path)
    walked = routes(app)
    assert len(walked) >= (9 if kind == "embedded" else 6)
    try:
        async with TestClient(TestServer(app)) as client:
            walk = Walk(client, await credentials(kind, service, client))
            for method, template in walked:
                base = fill(template, "in-1")
                await walk.send(method, base)
                for value in PATH_VALUES:
                    await walk.send(method, fill(template, value))
                for name in QUERY_NAMES:
                    for value in QUERY_VALUES:
                        await walk.send(method, f"{base}?{name}={value}&inbox=console-{name}")
                for headers in HEADERS:
                    await walk.send(method, base + "?inbox=console", headers=headers)
                for header in RAW_HEADERS:
                    await walk.raw(method, base + "?inbox=console", header)
                if method == "POST":
                    for body in (*BODIES, TEN_MB):
                        await walk.send(method, base, data=body, headers={"Content-Type": "application/json"})
            hub.close()  # ends the push streams the walk opened
    finally:
        await stop()
    assert len(walk.answers) > 300 * len(walked) // 10
    failures = walk.failures()
    assert failures == [], "\n".join(map(str, failures[:40]))


async def test_the_answers_say_what_was_wrong(tmp_path):
    service, app, hub, stop = runtime_app("embedded", tmp_path)
    try:
        async with TestClient(TestServer(app)) as client:
            auth = await credentials("embedded", service, client)
            cases = {
                "/api/incidents?limit=abc": "limit must be a whole number from 1 to 1000",
                "/api/incidents?limit=1e9": "limit must be a whole number",
                "/api/alerts?limit=-1": "limit must be a whole number",
                "/api/alerts?limit=0": "limit must be a whole number",
                "/api/incidents?state=lost": "state must be one of acknowledged, open, resolved",
                "/api/alerts/" + "x" * 200: "alert_id is too long",
                "/api/incidents?patient_id=%00": "patient_id has characters an id cannot have",
                "/api/inbox?inbox=console&after=x": "the event id must be a whole number",
            }
            for path, reason in cases.items():
                response = await client.get(path, headers=auth)
                assert (response.status, reason in await response.text()) == (400, True), path
            for body, reason in ((b"[1]", "must be a JSON object"), (b"nope", "must be JSON"),
                                 (b'{"note": {"a": 1}}', "'note' must be text")):
                response = await client.post("/api/incidents/in-1/acknowledge", data=body, headers=auth)
                assert (response.status, reason in await response.text()) == (400, True), body
            assert (await client.post("/api/incidents/in-1/acknowledge", data=b"x" * 70_000, headers=auth)).status == 413
            hub.close()
    finally:
        await stop()
