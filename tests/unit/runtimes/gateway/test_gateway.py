"""The gateway on its own: MQTT payloads in, Kafka records out, PUBACK only after Kafka's ack.

A fake producer (each send returns a future the test settles, as aiokafka's does when the
broker acknowledges) and a fake MQTT source (it records what was acknowledged): no servers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from vigil.runtimes.gateway.gateway import Gateway
from vigil.settings import VigilSettings
from vigil.shell.mqtt.message import Message
from vigil.shell.registry import Registry, Roster
from vigil.shell.streams.records import DeadLetterRecord, ReadingsRecord

ROSTER = Roster.model_validate({"patients": [
    {"patient_id": "pt-a", "devices": [{"device_id": "wr-a"}]},
    {"patient_id": "pt-b", "devices": [{"device_id": "wr-b"}]},
]})
READINGS, DEADLETTER = "vigil.readings.unit", "vigil.deadletter.unit"


@dataclass
class Sent:
    topic: str
    value: bytes
    key: bytes | None
    acked: asyncio.Future


class FakeProducer:
    """Every send is a future, settled by the test: the broker's acknowledgement."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future:
        acked = asyncio.get_running_loop().create_future()
        self.sent.append(Sent(topic, value, key, acked))
        return acked

    def acknowledge(self, records: list[Sent] | None = None) -> None:
        for record in self.sent if records is None else records:
            if not record.acked.done():
                record.acked.set_result(None)


class FakeClient:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int, bool]] = []

    def is_connected(self) -> bool:
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, payload, qos, retain))


class FakeSource:
    """Records each PUBACKed batch."""

    def __init__(self) -> None:
        self.acknowledged: list[list[Message]] = []
        self.client = FakeClient()
        self.depth = 0

    def acknowledge(self, messages: list[Message]) -> None:
        self.acknowledged.append(list(messages))


def vitals(device_id: str, seqs: list[int], now: float, **values: float) -> Message:
    samples = [{"ts": datetime.fromtimestamp(now - 60 + 15 * i, timezone.utc).isoformat(), "seq": seq, "hr_bpm": 72.0,
                "spo2_pct": 97.0, **values} for i, seq in enumerate(seqs)]
    payload = json.dumps({"v": 1, "device_id": device_id, "samples": samples}).encode()
    return Message(f"vigil/v1/devices/{device_id}/vitals", payload, now, mid=seqs[0])


@pytest.fixture
def gateway():
    settings = VigilSettings(readings_topic=READINGS, deadletter_topic=DEADLETTER)
    gateway = Gateway(settings, Registry(ROSTER), gateway_id="gw-unit")
    gateway.producer, gateway.source = FakeProducer(), FakeSource()
    return gateway


async def forward_acked(gateway: Gateway, messages: list[Message]) -> None:
    """Forward with a producer that acknowledges everything as soon as it is asked."""
    task = asyncio.create_task(gateway.forward(messages))
    while not task.done():
        gateway.producer.acknowledge()
        await asyncio.sleep(0)
    await task


def records(gateway: Gateway, topic: str) -> list[Sent]:
    return [s for s in gateway.producer.sent if s.topic == topic]


async def test_payloads_become_readings_records_keyed_by_patient(gateway):
    now = time.time()
    batch = [vitals("wr-a", [1, 2], now), vitals("wr-b", [7], now), vitals("wr-a", [3], now + 1),
             Message("vigil/v1/devices/wr-a/status", b'{"v": 1, "device_id": "wr-a", "state": "online"}',
                     now)]  # a (well-formed: issue 11 checks statuses too) status: not a reading
    await forward_acked(gateway, batch)
    sent = records(gateway, READINGS)
    # One record per device per batch, in order: the downstream cost of a record is paid once.
    # ... then wr-a's accepted status as a coverage note (issue 13: a last will is the fast path).
    assert [(s.key, ReadingsRecord.model_validate_json(s.value).patient_id) for s in sent] == [
        (b"pt-a", "pt-a"), (b"pt-b", "pt-b"), (b"pt-a", "pt-a")]
    note = ReadingsRecord.model_validate_json(sent[2].value)
    assert (note.readings, note.status) == ([], "online")
    first = ReadingsRecord.model_validate_json(sent[0].value)
    assert (first.device_id, first.topic, first.received_at) == ("wr-a", "vigil/v1/devices/wr-a/vitals", now)
    readings = first.to_readings()
    assert [r.seq for r in readings] == [1, 2, 3]
    assert {(r.patient_id, r.device_id, r.hr, r.spo2) for r in readings} == {("pt-a", "wr-a", 72.0, 97.0)}
    assert records(gateway, DEADLETTER) == []
    assert gateway.forwarded == 4 and gateway.rejected == 0
    assert gateway.source.acknowledged == [batch]  # the whole batch, status message included


async def test_refusals_become_dead_letters_and_the_rest_still_goes(gateway):
    now = time.time()
    batch = [Message("vigil/v1/devices/wr-a/vitals", b"{not json", now, mid=1),
             vitals("wr-zz", [1], now),  # not enrolled
             _one_bad_sample("wr-b", now)]
    await forward_acked(gateway, batch)
    dead = [(s.key, DeadLetterRecord.model_validate_json(s.value)) for s in records(gateway, DEADLETTER)]
    assert [(key, d.reason) for key, d in dead] == [(b"wr-a", "malformed_json"), (b"wr-zz", "unknown_device"),
                                                    (b"wr-b", "implausible_value")]
    assert dead[0][1].raw_b64 and dead[2][1].sample_index == 1
    readings, note = [ReadingsRecord.model_validate_json(s.value) for s in records(gateway, READINGS)]
    assert readings.patient_id == "pt-b" and [r.seq for r in readings.to_readings()] == [1]  # its good sample
    # Coverage (issue 13): wr-a's refusal is noted for its patient; wr-b was heard, so no note.
    assert (note.patient_id, note.readings, note.refused) == ("pt-a", [], {"malformed_json": 1})
    # The device learns why (issue 13): on its errors topic, QoS 1, not retained, after the PUBACK.
    told = {topic: (json.loads(payload), qos, retain) for topic, payload, qos, retain in gateway.source.client.published}
    assert set(told) == {"vigil/v1/devices/wr-a/errors", "vigil/v1/devices/wr-zz/errors", "vigil/v1/devices/wr-b/errors"}
    body, qos, retain = told["vigil/v1/devices/wr-b/errors"]
    assert (qos, retain) == (1, False) and body["reason"] == "implausible_value" and body["sample_index"] == 1
    assert body["field"] == "hr_bpm"  # the field, within sample 1
    assert gateway.rejected == 3 and gateway.forwarded == 1
    assert gateway.source.acknowledged == [batch]  # a refusal is handled too: the broker need not resend it


async def test_spoofed_and_stranger_statuses_are_refused_counted_and_kept(gateway):
    """Issue 11: a status on one device's topic with another device's id in the payload, or from a
    device the roster does not know, is a dead letter with its reason; a good one is not forwarded."""
    now = time.time()
    batch = [Message("vigil/v1/devices/wr-a/status", b'{"v": 1, "device_id": "wr-b", "state": "offline"}', now),
             Message("vigil/v1/devices/wr-zz/status", b'{"v": 1, "device_id": "wr-zz", "state": "online"}', now),
             Message("vigil/v1/devices/wr-b/status", b'{"v": 1, "device_id": "wr-b", "state": "online"}', now)]
    await forward_acked(gateway, batch)
    dead = [(s.key, DeadLetterRecord.model_validate_json(s.value)) for s in records(gateway, DEADLETTER)]
    assert [(key, d.reason) for key, d in dead] == [(b"wr-a", "topic_mismatch"), (b"wr-zz", "unknown_device")]
    assert "wr-b" in dead[0][1].detail
    # Only wr-b's own, enrolled status becomes a coverage note; refused statuses are not refused samples.
    notes = [ReadingsRecord.model_validate_json(s.value) for s in records(gateway, READINGS)]
    assert [(n.patient_id, n.readings, n.status, n.refused) for n in notes] == [("pt-b", [], "online", None)]
    assert gateway.rejected == 2
    assert gateway.metrics.rejected.labels("topic_mismatch")._value.get() == 1
    assert gateway.source.acknowledged == [batch]


def _one_bad_sample(device_id: str, now: float) -> Message:
    """A batch whose second sample is impossible (heart rate 900)."""
    message = vitals(device_id, [1, 2], now)
    body = json.loads(message.payload)
    body["samples"][1]["hr_bpm"] = 900.0
    return Message(message.topic, json.dumps(body).encode(), now, mid=message.mid)


async def test_a_message_is_acknowledged_only_after_every_record_made_from_it(gateway):
    now = time.time()
    batch = [vitals("wr-a", [1], now), vitals("wr-b", [1], now), Message("vigil/v1/devices/wr-a/vitals", b"[]", now, mid=9)]
    task = asyncio.create_task(gateway.forward(batch))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(gateway.producer.sent) == 3  # two readings records and a dead letter, all in flight
    assert gateway.source.acknowledged == []
    gateway.producer.acknowledge(gateway.producer.sent[:-1])
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and gateway.source.acknowledged == []  # one record still unacknowledged
    gateway.producer.acknowledge()
    await task
    assert gateway.source.acknowledged == [batch]


async def test_a_failed_send_acknowledges_nothing_so_the_broker_redelivers(gateway):
    now = time.time()
    batch = [vitals("wr-a", [1], now), vitals("wr-b", [1], now)]
    task = asyncio.create_task(gateway.forward(batch))
    while len(gateway.producer.sent) < 2:
        await asyncio.sleep(0)
    gateway.producer.acknowledge(gateway.producer.sent[:1])
    gateway.producer.sent[1].acked.set_exception(ConnectionError("kafka went away"))
    with pytest.raises(ConnectionError):
        await task
    assert gateway.source.acknowledged == [] and gateway.forwarded == 0
    assert "kafka went away" in gateway.last_error
    assert gateway.health()["status"] == "degraded"


async def test_a_message_that_breaks_the_check_is_dead_lettered_and_the_batch_goes_on(gateway, monkeypatch, caplog):
    """The attack: one message makes checking itself fail (a bug). It becomes an `internal_error`
    dead letter with a trace id (in the log with the traceback too); the others are forwarded and
    the batch is acknowledged."""
    from vigil.runtimes.gateway import gateway as module

    real = module.check_vitals_payload

    def breaks_on_poison(topic, payload, **kwargs):
        if payload == b"poison":
            raise RecursionError("maximum recursion depth exceeded")
        return real(topic, payload, **kwargs)

    monkeypatch.setattr(module, "check_vitals_payload", breaks_on_poison)
    now = time.time()
    poison = Message("vigil/v1/devices/wr-a/vitals", b"poison", now, mid=5)
    batch = [vitals("wr-a", [1], now), poison, vitals("wr-b", [1], now), Message("vigil/v1/devices/wr-a/vitals",
                                                                                  b"[" * 30_000, now, mid=6)]
    await forward_acked(gateway, batch)
    dead = [DeadLetterRecord.model_validate_json(s.value) for s in records(gateway, DEADLETTER)]
    assert [d.reason for d in dead] == ["internal_error", "schema_invalid"]  # the real poison: refused by the bounds
    assert dead[0].raw == b"poison" and dead[0].device_id == "wr-a"
    trace_id = dead[0].detail.split("trace_id=")[1].split(":")[0]
    (logged,) = [r for r in caplog.records if getattr(r, "trace_id", None) == trace_id]
    assert logged.exc_info and logged.exc_info[0] is RecursionError
    assert sorted(ReadingsRecord.model_validate_json(s.value).patient_id for s in records(gateway, READINGS)) == [
        "pt-a", "pt-b"]
    assert gateway.source.acknowledged == [batch]
    assert 'vigil_rejected_total{reason="internal_error"} 1.0' in gateway.metrics.exposition().decode()
