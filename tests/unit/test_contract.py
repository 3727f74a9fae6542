"""Every kind of bad input is rejected with a reason and its raw bytes; good samples survive."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from vigil.contract.validation import ContractLimits, RejectReason, check_vitals_payload
from vigil.core.patient import PatientMonitor

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
TOPIC = "vigil/v1/devices/wr-1/vitals"
ENROLLED = {"wr-1": "pt-1"}.get


def sample(seq: int, **fields) -> dict:
    base = {"ts": (NOW - timedelta(seconds=60 - seq)).isoformat(), "seq": seq, "hr_bpm": 72.0, "spo2_pct": 97.0,
            "rr_per_min": 15.0, "temp_c": 36.8, "battery_pct": 80.0}
    base.update(fields)
    return base


def payload(*samples: dict, device_id: str = "wr-1") -> bytes:
    return json.dumps({"v": 1, "device_id": device_id, "samples": list(samples)}).encode()


def check(raw: bytes, topic: str = TOPIC, limits: ContractLimits = ContractLimits()):
    return check_vitals_payload(topic, raw, received_at=NOW.timestamp(), patient_for_device=ENROLLED, limits=limits)


def test_good_batch_becomes_readings():
    checked = check(payload(sample(1), sample(2, sbp_mmhg=120, dbp_mmhg=80, manual={"on_oxygen": False, "acvpu": "A"})))
    assert not checked.rejections
    assert [r.seq for r in checked.readings] == [1, 2]
    assert checked.readings[1].sbp == 120 and checked.readings[1].acvpu == "A" and checked.readings[1].on_oxygen is False
    assert checked.patient_id == "pt-1"


def test_malformed_json():
    raw = b'{"v":1,"device_id":"wr-1","samples":[{'
    checked = check(raw)
    assert not checked.readings
    (rejection,) = checked.rejections
    assert rejection.reason == RejectReason.MALFORMED_JSON and rejection.raw == raw and rejection.detail


def test_wrong_types_are_schema_invalid_per_sample():
    checked = check(payload(sample(1, hr_bpm="fast"), sample(2)))
    assert [r.seq for r in checked.readings] == [2]
    (rejection,) = checked.rejections
    assert rejection.reason == RejectReason.SCHEMA_INVALID and rejection.sample_index == 0
    assert b'"fast"' in rejection.raw and "hr_bpm" in rejection.detail


@pytest.mark.parametrize("field, value", [("spo2_pct", 140), ("hr_bpm", -5), ("temp_c", 60), ("battery_pct", 101)])
def test_impossible_values_reject_only_that_sample(field, value):
    checked = check(payload(sample(1), sample(2, **{field: value}), sample(3)))
    assert [r.seq for r in checked.readings] == [1, 3]
    (rejection,) = checked.rejections
    assert rejection.reason == RejectReason.IMPLAUSIBLE_VALUE and rejection.sample_index == 1
    assert field in rejection.detail and rejection.patient_id == "pt-1"


def test_diastolic_above_systolic_is_implausible():
    checked = check(payload(sample(1, sbp_mmhg=80, dbp_mmhg=120)))
    assert checked.rejections[0].reason == RejectReason.IMPLAUSIBLE_VALUE


def test_unknown_device():
    raw = payload(sample(1), device_id="wr-9")
    checked = check(raw, topic="vigil/v1/devices/wr-9/vitals")
    assert not checked.readings and checked.rejections[0].reason == RejectReason.UNKNOWN_DEVICE
    assert checked.rejections[0].raw == raw


def test_device_id_must_match_topic():
    checked = check(payload(sample(1), device_id="wr-1"), topic="vigil/v1/devices/wr-2/vitals")
    assert checked.rejections[0].reason == RejectReason.TOPIC_MISMATCH


def test_future_timestamp_rejects_that_sample_only():
    future = sample(2, ts=(NOW + timedelta(days=2)).isoformat())
    checked = check(payload(sample(1), future))
    assert [r.seq for r in checked.readings] == [1]
    assert checked.rejections[0].reason == RejectReason.FUTURE_TIMESTAMP and checked.rejections[0].sample_index == 1


def test_timestamp_without_offset_is_refused():
    checked = check(payload(sample(1, ts="2026-11-24T11:59:00")))
    assert checked.rejections[0].reason == RejectReason.SCHEMA_INVALID


def test_oversize_payload():
    raw = payload(sample(1)) + b" " * 70_000
    checked = check(raw)
    assert checked.rejections[0].reason == RejectReason.OVERSIZE and checked.rejections[0].raw == raw


def test_extra_fields_and_wrong_version_are_refused():
    assert check(payload(sample(1, heart=70))).rejections[0].reason == RejectReason.SCHEMA_INVALID
    raw = json.dumps({"v": 2, "device_id": "wr-1", "samples": [sample(1)]}).encode()
    assert check(raw).rejections[0].reason == RejectReason.SCHEMA_INVALID


def test_duplicate_and_out_of_order_sequence_numbers_in_the_core():
    monitor = PatientMonitor("pt-1")
    readings = check(payload(sample(5), sample(6))).readings
    assert all(monitor.observe(r).accepted for r in readings)
    duplicate = monitor.observe(readings[1])
    assert not duplicate.accepted and duplicate.events[0].reason == "duplicate_seq"
    older = check(payload(sample(3))).readings[0]
    refused = monitor.observe(older)
    assert not refused.accepted and refused.events[0].reason == "out_of_order_seq"


def test_counter_reset_after_reboot_is_accepted():
    monitor = PatientMonitor("pt-1")
    assert monitor.observe(check(payload(sample(50))).readings[0]).accepted
    rebooted = check(payload(sample(1, ts=(NOW + timedelta(seconds=30)).isoformat()))).readings[0]
    assert monitor.observe(rebooted).accepted
