"""The signed webhook channel against a real local aiohttp receiver that verifies signatures."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from vigil.shell.notify.channels.base import Delivery, PermanentFailure, TemporaryFailure
from vigil.shell.notify.channels.webhook import SignedWebhook, sign, verify_signature

SECRET = b"whsec-test-0123456789"


class Receiver:
    """A webhook endpoint as a receiver would write one: verify, dedupe by Idempotency-Key, answer."""

    def __init__(self) -> None:
        self.received: list[dict] = []  # verified deliveries
        self.rejected = 0
        self.seen_keys: set[str] = set()
        self.status = 200
        self.delay_s = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="scripted")
        ok = verify_signature(SECRET, request.headers.get("X-Vigil-Timestamp", ""), raw,
                              request.headers.get("X-Vigil-Signature", ""))
        if not ok:
            self.rejected += 1
            return web.Response(status=401, text="bad signature")
        key = request.headers["Idempotency-Key"]
        duplicate = key in self.seen_keys
        self.seen_keys.add(key)
        self.received.append({"headers": dict(request.headers), "raw": raw, "json": json.loads(raw),
                              "duplicate": duplicate})
        return web.json_response({"id": f"evt-{len(self.received)}"}, headers={"X-Request-Id": f"rq-{len(self.received)}"})


async def _moved(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/hooks/vigil")


@pytest.fixture
async def receiver():
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/vigil", endpoint.handle)
    app.router.add_post("/moved", _moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield endpoint, f"http://127.0.0.1:{port}/hooks/vigil"
    await runner.cleanup()


@pytest.fixture
async def channel():
    ch = SignedWebhook(SECRET, timeout=1)
    yield ch
    await ch.close()


def hook(url: str, key: str = "alert-9.webhook.team-ward-3") -> Delivery:
    payload = {"event": "alert.raised", "incident_id": "inc-4", "alert_ids": ["alert-9"], "severity": "high",
               "kind": "spo2_low", "values": {"spo2": 88, "heart_rate": 121}, "t": "2025-01-01T10:00:00Z"}
    return Delivery(key=key, channel="webhook", recipient_id="team:ward-3", address=url, audience="clinician",
                    subject="SpO2 88 %", body="SpO2 88 %（基线 96 %），心率 121。", payload=payload, critical=True)


async def test_a_signed_post_verifies_at_the_receiver(receiver, channel):
    endpoint, url = receiver
    result = await channel.send(hook(url))

    assert endpoint.rejected == 0 and len(endpoint.received) == 1
    got = endpoint.received[0]
    assert result.provider_id == "rq-1"
    assert got["headers"]["Idempotency-Key"] == "alert-9.webhook.team-ward-3"
    assert got["headers"]["Content-Type"].startswith("application/json")
    assert abs(int(got["headers"]["X-Vigil-Timestamp"]) - time.time()) < 5
    document = got["json"]
    assert document["event"] == "alert.raised" and document["values"] == {"spo2": 88, "heart_rate": 121}
    assert document["key"] == "alert-9.webhook.team-ward-3" and document["audience"] == "clinician"
    assert document["body"] == "SpO2 88 %（基线 96 %），心率 121。" and document["critical"] is True
    assert "team:ward-3" not in got["raw"].decode()  # the internal recipient id stays inside Vigil


async def test_a_retry_carries_the_same_idempotency_key_for_the_receiver_to_dedupe(receiver, channel):
    endpoint, url = receiver
    await channel.send(hook(url))
    await channel.send(hook(url))
    assert [r["duplicate"] for r in endpoint.received] == [False, True]


def test_verify_signature_rejects_tampering_wrong_secret_and_stale_timestamps():
    body = b'{"severity":"high","values":{"spo2":88}}'
    ts = "1735725600"
    header = sign(SECRET, ts, body)
    now = 1735725600 + 10
    assert verify_signature(SECRET, ts, body, header, now=now)
    assert not verify_signature(SECRET, ts, body.replace(b"88", b"98"), header, now=now)  # tampered body
    assert not verify_signature(SECRET, str(int(ts) + 1), body, header, now=now)  # tampered timestamp
    assert not verify_signature(b"another-secret", ts, body, header, now=now)
    assert not verify_signature(SECRET, ts, body, header, now=int(ts) + 301)  # replayed too late
    assert not verify_signature(SECRET, ts, body, header, now=int(ts) - 301)  # from the future
    assert verify_signature(SECRET, ts, body, header, tolerance_s=600, now=int(ts) + 301)
    assert not verify_signature(SECRET, "not-a-number", body, header, now=now)
    assert not verify_signature(SECRET, ts, body, "", now=now)
    assert not verify_signature(SECRET, ts, body, header.removeprefix("v1="), now=now)  # no scheme
    # While a secret is rotated the sender may sign with both; either value verifies.
    rotated = f"{sign(b'old-secret', ts, body)}, {header}"
    assert verify_signature(SECRET, ts, body, rotated, now=now)
    assert header == "v1=" + header[3:] and len(header) == 3 + 64


async def test_a_tampered_body_is_refused_by_the_receiver(receiver):
    endpoint, url = receiver

    import httpx

    async def tamper(request: httpx.Request) -> None:  # the signed bytes are changed in transit
        request._content = request.content.replace(b"88", b"98")  # noqa: SLF001
        request.stream = httpx.ByteStream(request._content)  # noqa: SLF001
        request.headers["Content-Length"] = str(len(request._content))

    client = httpx.AsyncClient(timeout=1, event_hooks={"request": [tamper]})
    ch = SignedWebhook(SECRET, client=client)
    try:
        with pytest.raises(PermanentFailure, match="401"):
            await ch.send(hook(url))
    finally:
        await ch.close()
    assert endpoint.rejected == 1 and endpoint.received == []


@pytest.mark.parametrize("status, failure", [
    (400, PermanentFailure), (404, PermanentFailure), (410, PermanentFailure),
    (408, TemporaryFailure), (429, TemporaryFailure), (500, TemporaryFailure), (503, TemporaryFailure),
])
async def test_status_codes_map_to_permanent_or_temporary(receiver, channel, status, failure):
    endpoint, url = receiver
    endpoint.status = status
    with pytest.raises(failure, match=str(status)):
        await channel.send(hook(url))


async def test_a_redirect_is_not_followed(receiver, channel):
    endpoint, url = receiver
    with pytest.raises(TemporaryFailure, match="302"):
        await channel.send(hook(url.replace("/hooks/vigil", "/moved")))
    assert endpoint.received == []


async def test_a_slow_receiver_times_out_as_temporary(receiver):
    endpoint, url = receiver
    endpoint.delay_s = 1.0
    ch = SignedWebhook(SECRET, timeout=0.2)
    try:
        with pytest.raises(TemporaryFailure, match="timed out"):
            await ch.send(hook(url))
    finally:
        await ch.close()


async def test_nothing_listening_is_temporary(channel, free_port):
    with pytest.raises(TemporaryFailure):
        await channel.send(hook(f"http://127.0.0.1:{free_port}/hooks/vigil"))


async def test_a_url_that_is_not_http_is_permanent(channel):
    for bad in ("ftp://example.org/x", "example.org/hook", "", "http://"):
        with pytest.raises(PermanentFailure):
            await channel.send(hook(bad))


def test_an_empty_secret_is_refused():
    with pytest.raises(ValueError):
        SignedWebhook(b"")
