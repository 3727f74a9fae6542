"""In-app push: the hub (fan-out, idempotency, bounds) and the SSE / inbox endpoints over real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vigil.shell.notify.channels.base import Delivery, PermanentFailure
from vigil.shell.notify.channels.push import AppPush, PushHub
from vigil.web.push_streams import add_push_routes


def note(key: str, inbox: str = "console", body: str = "p-001: SpO2 88 %", critical: bool = False) -> Delivery:
    return Delivery(key=key, channel="app", recipient_id="team:ward-3", address=inbox, audience="clinician",
                    subject="Vigil alert", body=body, payload={"event": "alert.raised", "alert_ids": [key]},
                    critical=critical)


def drain(subscription) -> list:
    out = []
    while not subscription.queue.empty():
        out.append(subscription.queue.get_nowait())
    return out


async def test_fan_out_reaches_every_subscriber_of_the_inbox_and_only_them():
    hub = PushHub()
    console_a, console_b = hub.subscribe("console"), hub.subscribe("console")
    patient = hub.subscribe("patient:p-001")
    result = await AppPush(hub).send(note("k1"))

    got_a, got_b = drain(console_a), drain(console_b)
    assert [e.key for e in got_a] == [e.key for e in got_b] == ["k1"]
    assert drain(patient) == []
    event = got_a[0]
    assert result.provider_id == str(event.id)
    assert (event.inbox, event.audience, event.body, event.payload["event"]) == (
        "console", "clinician", "p-001: SpO2 88 %", "alert.raised")


async def test_the_same_key_is_broadcast_once():
    hub = PushHub()
    channel = AppPush(hub)
    listener = hub.subscribe("console")
    first = await channel.send(note("k1"))
    again = await channel.send(note("k1", body="a resend after a crash"))
    assert first.provider_id == again.provider_id
    assert [e.body for e in drain(listener)] == ["p-001: SpO2 88 %"]
    assert len(hub.events("console")) == 1


async def test_ids_increase_and_the_ring_is_bounded_per_inbox():
    hub = PushHub(ring_size=5)
    for i in range(8):
        hub.publish(note(f"c{i}"))
    hub.publish(note("p0", inbox="patient:p-001"))
    kept = hub.events("console")
    assert [e.key for e in kept] == ["c3", "c4", "c5", "c6", "c7"]
    assert [e.id for e in kept] == sorted(e.id for e in kept)
    assert [e.key for e in hub.events("console", after=kept[2].id)] == ["c6", "c7"]
    assert [e.key for e in hub.events("patient:p-001")] == ["p0"]  # one inbox does not evict another
    assert hub.has_gap("console", after=kept[0].id - 2)  # c1, c2 are gone
    assert not hub.has_gap("console", after=kept[0].id - 1)
    assert not hub.has_gap("patient:p-001", after=hub.first_id - 1)


async def test_a_new_hub_numbers_after_the_old_one_so_browsers_notice_the_restart():
    old = PushHub()
    for i in range(50):
        old.publish(note(f"k{i}"))
    await asyncio.sleep(0.002)
    new = PushHub()
    event, _ = new.publish(note("after-restart"))
    assert event.id > old.events("console")[-1].id
    assert new.has_gap("console", after=old.events("console")[-1].id)


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_up():
    hub = PushHub(subscriber_queue=3)
    slow, fast = hub.subscribe("console"), hub.subscribe("console")
    received = []
    for i in range(6):
        hub.publish(note(f"k{i}"))
        received.extend(drain(fast))
    assert [e.key for e in received] == [f"k{i}" for i in range(6)]
    assert slow.dropped and hub.dropped_subscribers == 1
    assert hub.subscriber_count("console") == 1
    assert slow.queue.qsize() == 1  # just the end marker: its memory does not grow
    assert [e async for e in slow] == []  # iteration ends; the client reconnects and replays
    hub.publish(note("k6"))
    assert slow.queue.qsize() == 0


async def test_an_app_delivery_without_an_inbox_is_permanent():
    with pytest.raises(PermanentFailure):
        await AppPush(PushHub()).send(note("k", inbox=" "))


# -- HTTP: SSE and the inbox endpoint -----------------------------------------------------------

async def read_sse(response, count: int, timeout: float = 3.0) -> list[dict]:
    """Parse SSE blocks until `count` of them (comments count as {"comment": ...})."""
    blocks: list[dict] = []
    current: dict = {}

    async def run() -> None:
        nonlocal current
        while len(blocks) < count:
            line = (await response.content.readline()).decode("utf-8")
            if line == "":
                raise EOFError("stream ended")
            line = line.rstrip("\n")
            if line == "":
                if current:
                    blocks.append(current)
                current = {}
            elif line.startswith(":"):
                current["comment"] = line[1:].strip()
            else:
                field, _, value = line.partition(": ")
                current[field] = value

    await asyncio.wait_for(run(), timeout)
    return blocks


@pytest.fixture
async def served():
    hub = PushHub(ring_size=50)
    app = web.Application()
    add_push_routes(app, hub, keepalive_s=0.2)
    async with TestClient(TestServer(app)) as client:
        yield hub, client


async def test_sse_streams_live_events_and_keep_alives(served):
    hub, client = served
    async with client.get("/api/stream", params={"inbox": "console"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert (await read_sse(response, 1))[0] == {"retry": "3000"}
        assert hub.subscriber_count("console") == 1
        hub.publish(note("k1", body="心率 128\n请查看"))
        hub.publish(note("elsewhere", inbox="patient:p-002"))
        block = (await read_sse(response, 1))[0]
        assert block["event"] == "notification"
        data = json.loads(block["data"])
        assert data["key"] == "k1" and data["body"] == "心率 128\n请查看" and str(data["id"]) == block["id"]
        assert (await read_sse(response, 1))[0] == {"comment": "keep-alive"}  # nothing else for this inbox


async def test_sse_replays_after_last_event_id(served):
    hub, client = served
    events = [hub.publish(note(f"k{i}"))[0] for i in range(5)]
    headers = {"Last-Event-ID": str(events[1].id)}
    async with client.get("/api/stream", params={"inbox": "console"}, headers=headers) as response:
        blocks = await read_sse(response, 4)
        assert blocks[0] == {"retry": "3000"}
        assert [json.loads(b["data"])["key"] for b in blocks[1:]] == ["k2", "k3", "k4"]
        hub.publish(note("k5"))
        live = await read_sse(response, 1)
        assert json.loads(live[0]["data"])["key"] == "k5"
    # Without Last-Event-ID a new client gets only what comes next, not the history.
    async with client.get("/api/stream", params={"inbox": "console"}) as response:
        await read_sse(response, 1)
        hub.publish(note("k6"))
        assert json.loads((await read_sse(response, 1))[0]["data"])["key"] == "k6"


async def test_sse_tells_a_client_from_before_a_restart_about_the_gap(served):
    hub, client = served
    hub.publish(note("k1"))
    stale = str(hub.first_id - 100)  # an id a browser kept from the previous process
    async with client.get("/api/stream", params={"inbox": "console"}, headers={"Last-Event-ID": stale}) as response:
        blocks = await read_sse(response, 3)
        assert blocks[1]["event"] == "gap"
        assert json.loads(blocks[2]["data"])["key"] == "k1"


async def test_a_dropped_sse_subscriber_stream_ends(served):
    hub, client = served
    hub.subscriber_queue = 2
    async with client.get("/api/stream", params={"inbox": "console"}) as response:
        await read_sse(response, 1)
        for i in range(50):  # published without yielding: the handler cannot keep up
            hub.publish(note(f"k{i}"))
        with pytest.raises(EOFError):
            await read_sse(response, 100)
    assert hub.dropped_subscribers == 1 and hub.subscriber_count() == 0


async def test_the_subscription_is_released_when_the_client_leaves(served):
    hub, client = served
    async with client.get("/api/stream", params={"inbox": "console"}) as response:
        await read_sse(response, 1)
        assert hub.subscriber_count("console") == 1
    for _ in range(30):  # noticed at the next write: a keep-alive, 0.2 s here
        if hub.subscriber_count("console") == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.subscriber_count("console") == 0


async def test_inbox_endpoint_returns_json_after_an_id(served):
    hub, client = served
    events = [hub.publish(note(f"k{i}"))[0] for i in range(3)]
    response = await client.get("/api/inbox", params={"inbox": "console", "after": str(events[0].id)})
    assert response.status == 200
    document = await response.json()
    assert [e["key"] for e in document["events"]] == ["k1", "k2"] and document["gap"] is False
    assert (await (await client.get("/api/inbox", params={"inbox": "nobody"})).json())["events"] == []
    assert (await client.get("/api/inbox")).status == 400
    assert (await client.get("/api/inbox", params={"inbox": "console", "after": "x"})).status == 400
    assert (await client.get("/api/stream", params={"inbox": "console"}, headers={"Last-Event-ID": "x"})).status == 400


async def test_an_authorize_hook_guards_inboxes():
    hub = PushHub()

    async def only_console(_request: web.Request, inbox: str) -> bool:
        return inbox == "console"

    app = web.Application()
    add_push_routes(app, hub, authorize=only_console)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/inbox", params={"inbox": "console"})).status == 200
        assert (await client.get("/api/inbox", params={"inbox": "patient:p-001"})).status == 403
        assert (await client.get("/api/stream", params={"inbox": "patient:p-001"})).status == 403
