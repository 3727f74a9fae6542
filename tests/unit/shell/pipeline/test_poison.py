"""One poison message never costs the batch: it is dead-lettered, counted and traced, the rest goes on."""

import json
import time
from datetime import datetime, timezone

import pytest

from vigil.core.patient import PatientMonitor
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline import pipeline as module
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Message, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import readings as readings_table

ROSTER = Roster.model_validate({"patients": [
    {"patient_id": "pt-a", "devices": [{"device_id": "wr-a"}]},
    {"patient_id": "pt-b", "devices": [{"device_id": "wr-b"}]},
]})


def vitals(device_id: str, seqs: list[int], now: float) -> Message:
    samples = [{"ts": datetime.fromtimestamp(now - 120 + seq, timezone.utc).isoformat(), "seq": seq, "hr_bpm": 72.0,
                "spo2_pct": 97.0, "rr_per_min": 15.0} for seq in seqs]
    payload = json.dumps({"v": 1, "device_id": device_id, "samples": samples}).encode()
    return Message(f"vigil/v1/devices/{device_id}/vitals", payload, now)


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)


def reasons(decision) -> list[str]:
    return [row.reason for row in decision.batch.dead_letters]


def test_the_reported_poison_is_refused_and_the_batch_kept(pipeline, tmp_path):
    """30,000 nested `[` raised RecursionError in Pipeline.process and the whole batch was lost."""
    now = time.time()
    poison = Message("vigil/v1/devices/wr-a/vitals", b"[" * 30_000, now)
    deep_object = Message("vigil/v1/devices/wr-b/vitals", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, now)
    batch = [vitals("wr-a", [1, 2], now), poison, vitals("wr-b", [1], now), deep_object, vitals("wr-a", [3], now)]
    decision = pipeline.process(batch)
    assert sorted((r.patient_id, r.seq) for r in decision.batch.readings) == [
        ("pt-a", 1), ("pt-a", 2), ("pt-a", 3), ("pt-b", 1)]
    assert len(reasons(decision)) == 2 and "internal_error" not in reasons(decision)
    assert sum(pipeline.totals.rejected.values()) == 2 and pipeline.totals.payloads == 5
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    store.write(decision.batch)
    assert store.count(readings_table) == 4 and sum(store.dead_letter_reasons().values()) == 2


def test_a_failing_check_is_an_internal_error_with_a_trace_id(pipeline, monkeypatch, caplog):
    real = module.check_vitals_payload

    def breaks_on(topic, payload, **kwargs):
        if b"wr-b" in payload:
            raise KeyError("a bug in the contract")
        return real(topic, payload, **kwargs)

    monkeypatch.setattr(module, "check_vitals_payload", breaks_on)
    now = time.time()
    bad = vitals("wr-b", [1], now)
    decision = pipeline.process([vitals("wr-a", [1], now), bad, vitals("wr-a", [2], now)])
    assert [r.seq for r in decision.batch.readings] == [1, 2]
    (dead,) = decision.batch.dead_letters
    assert dead.reason == "internal_error" and dead.raw == bad.payload and dead.device_id == "wr-b"
    assert "KeyError" in dead.detail and "trace_id=" in dead.detail
    trace_id = dead.detail.split("trace_id=")[1].split(":")[0]
    (logged,) = [r for r in caplog.records if getattr(r, "trace_id", None) == trace_id]
    assert logged.levelname == "ERROR" and logged.exc_info[0] is KeyError
    assert pipeline.totals.rejected == {"internal_error": 1} and pipeline.totals.payloads == 3
    assert 'vigil_rejected_total{reason="internal_error"} 1.0' in pipeline.metrics.exposition().decode()


def test_a_core_failure_mid_message_keeps_the_monitor_and_the_rows_in_step(pipeline, monkeypatch):
    """The core raises on the third reading of a message: the two before it (which the monitor
    took) are stored with their events; the failing one and the rest are in the dead letter, not
    in the batch. Later messages for the patient go on normally."""
    real = PatientMonitor.observe

    def breaks_on_seq_3(self, reading):
        if reading.seq == 3:
            raise ZeroDivisionError("a bug in the core")
        return real(self, reading)

    monkeypatch.setattr(PatientMonitor, "observe", breaks_on_seq_3)
    now = time.time()
    decision = pipeline.process([vitals("wr-a", [1, 2, 3, 4], now), vitals("wr-b", [1], now)])
    assert sorted((r.patient_id, r.seq) for r in decision.batch.readings) == [("pt-a", 1), ("pt-a", 2), ("pt-b", 1)]
    (dead,) = decision.batch.dead_letters
    assert dead.reason == "internal_error" and "at seq 3, 2 reading(s) before it stored" in dead.detail
    assert "ZeroDivisionError" in dead.detail
    assert pipeline.totals.readings == 3 and pipeline.metrics.readings._value.get() == 3
    monitor = pipeline.patients.get("pt-a")
    later = pipeline.process([vitals("wr-a", [5, 6], now)])
    assert [r.seq for r in later.batch.readings] == [5, 6] and not later.batch.dead_letters
    assert monitor.devices["wr-a"].last_seq == 6


def test_the_scaled_path_isolates_one_group_too(pipeline, monkeypatch):
    from vigil.shell.contract.validation import check_vitals_payload

    now = time.time()
    groups = []
    for message in (vitals("wr-a", [1], now), vitals("wr-b", [1], now)):
        checked = check_vitals_payload(message.topic, message.payload, received_at=now,
                                       patient_for_device=pipeline.registry.patient_for_device)
        groups.append((checked.readings, message))
    real = PatientMonitor.observe
    monkeypatch.setattr(PatientMonitor, "observe",
                        lambda self, r: (_ for _ in ()).throw(ValueError("bug")) if r.patient_id == "pt-a" else real(self, r))
    decision = pipeline.process_readings(groups)
    assert [r.patient_id for r in decision.batch.readings] == ["pt-b"]
    assert reasons(decision) == ["internal_error"]


@pytest.mark.parametrize("payload, reason", [
    (b'{"v":"1","device_id":"wr-a","state":"online"}', "schema_invalid"),
    (b'{"v":1,"device_id":"wr-a","state":"online","ts":1795564740}', "schema_invalid"),
    (b'{"v":1,"device_id":"wr-a","state":"online","battery_pct":true}', "schema_invalid"),
    (b'{"v":1,"device_id":"wr-b","state":"offline"}', "topic_mismatch"),  # wr-a speaking for wr-b
    (b"[" * 30_000, "schema_invalid"),
    (b'{"a":"' + b"x" * 2000 + b'"}', "schema_invalid"),
    (b'{"v":1,"device_id":"wr-a","state":"online","firmware":"' + b"x" * 70_000 + b'"}', "oversize"),
])
def test_status_messages_are_as_strict(pipeline, payload, reason):
    decision = pipeline.process([Message("vigil/v1/devices/wr-a/status", payload, time.time())])
    assert reasons(decision) == [reason] and not decision.batch.device_status


def test_a_strangers_status_is_refused(pipeline):
    """Issue 11: a status only for an enrolled device (one the roster maps to a patient)."""
    decision = pipeline.process([Message("vigil/v1/devices/wr-zz/status", b'{"v":1,"device_id":"wr-zz","state":"online"}',
                                         time.time())])
    assert reasons(decision) == ["unknown_device"] and not decision.batch.device_status


def test_a_good_status_is_kept(pipeline):
    decision = pipeline.process([Message("vigil/v1/devices/wr-a/status",
                                         b'{"v":1,"device_id":"wr-a","state":"online","battery_pct":80}', 5.0)])
    assert [(s.device_id, s.state, s.t) for s in decision.batch.device_status] == [("wr-a", "online", 5.0)]
