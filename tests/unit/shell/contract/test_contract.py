"""Every kind of bad input is rejected with a reason and its raw bytes; good samples survive."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from vigil.shell.contract.validation import ContractLimits, RejectReason, check_vitals_payload
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


def test_duplicate_sequence_numbers_are_refused_and_late_ones_kept_but_not_assessed():
    monitor = PatientMonitor("pt-1")
    readings = check(payload(sample(5), sample(6))).readings
    assert all(monitor.observe(r).accepted for r in readings)
    duplicate = monitor.observe(readings[1])
    assert not duplicate.accepted and duplicate.events[0].reason == "duplicate_seq"
    # A broker may redeliver a batch after newer ones (a subscriber's reconnect): new to Vigil,
    # so stored, but behind the patient's state, so not assessed.
    older = check(payload(sample(3))).readings[0]
    late = monitor.observe(older)
    assert late.accepted and late.flags == ("late",) and late.news2 is None and not late.events
    assert monitor.devices[older.device_id].last_seq == 6, "the cursor does not move back"
    again = monitor.observe(older)
    assert not again.accepted and again.events[0].reason == "duplicate_seq"


def test_counter_reset_after_reboot_is_accepted():
    monitor = PatientMonitor("pt-1")
    assert monitor.observe(check(payload(sample(50))).readings[0]).accepted
    rebooted = check(payload(sample(1, ts=(NOW + timedelta(seconds=30)).isoformat()))).readings[0]
    assert monitor.observe(rebooted).accepted


# -- the fast path (whole batch valid: readings built straight from the models) must agree with
# -- the general per-sample loop on every payload, valid or not.

def _mutations(rng):
    """Payloads around the contract's edges: every kind of invalid input, and valid variants."""
    bad_values = [None, "72", "fast", True, [], {}, -1, 0, 0.5, 1, 25, 45, 80, 100, 100.01, 140, 300, 301, 1000, 1001,
                  16, 16.5, 2**53, 2**53 + 1, 1e308, -0.0, 3.0]
    fields = ["ts", "seq", "hr_bpm", "spo2_pct", "rr_per_min", "temp_c", "sbp_mmhg", "dbp_mmhg", "steps", "accel_g",
              "battery_pct", "skin_contact", "manual", "heart"]
    stamps = [(NOW + timedelta(seconds=s)).isoformat() for s in (-30, 299, 301, 86400, -8 * 86400, -7 * 86400 + 1)]
    stamps += ["2026-11-24T11:59:00", "2026-11-24T11:59:00Z", "2026-11-24 11:59:00+01:00", "2026-02-30T11:59:00Z",
               "yesterday", 1795564740, "2026-11-24T11:59:00.1234567+00:00"]
    manuals = [None, {}, {"on_oxygen": True}, {"acvpu": "V"}, {"acvpu": "X"}, {"on_oxygen": "yes"}, {"extra": 1}, []]
    for _ in range(600):
        samples = [sample(seq) for seq in range(1, rng.randint(2, 6))]
        for _ in range(rng.randint(0, 3)):
            s = rng.choice(samples)
            name = rng.choice(fields)
            if name == "ts":
                s["ts"] = rng.choice(stamps)
            elif name == "manual":
                s["manual"] = rng.choice(manuals)
            elif name == "sbp_mmhg":
                s["sbp_mmhg"], s["dbp_mmhg"] = rng.choice([(120, 80), (120.5, 80.25), (80, 120), (120, None), (None, 80),
                                                           (300, 199), (40, 20), (301, 80), ("120", 80)])
            elif rng.random() < 0.3:
                s.pop(name, None)
            else:
                s[name] = rng.choice(bad_values)
        document = {"v": 1, "device_id": "wr-1", "samples": samples}
        roll = rng.random()
        if roll < 0.05:
            document["v"] = rng.choice([2, "1", 1.0, None])
        elif roll < 0.1:
            document["device_id"] = rng.choice(["wr-2", "wr 1", "", None, 7])
        elif roll < 0.13:
            document["firmware"] = rng.choice(["1.2.3", "x" * 65, 5])
        elif roll < 0.16:
            document["samples"] = rng.choice([[], {}, "none", [1, 2]])
        elif roll < 0.18:
            document["extra"] = True
        raw = json.dumps(document, default=str).encode()
        if rng.random() < 0.03:
            raw = raw[: rng.randint(0, len(raw) - 1)]
        topic = TOPIC if rng.random() < 0.9 else rng.choice(["vigil/v1/devices/wr-9/vitals", "vigil/v1/devices/wr-2/vitals",
                                                             "bad/topic"])
        yield topic, raw


def test_fast_path_agrees_with_the_general_path(monkeypatch):
    import random

    from vigil.shell.contract import validation

    payloads = list(_mutations(random.Random(7)))
    limits = ContractLimits(max_payload_bytes=700)
    fast = [check(raw, topic, limits) for topic, raw in payloads]
    monkeypatch.setattr(validation, "_readings", lambda *args: None)  # every batch through the per-sample loop
    general = [check(raw, topic, limits) for topic, raw in payloads]
    assert fast == general
    outcomes = {r.reason for c in fast for r in c.rejections} | ({"accepted"} if any(c.readings for c in fast) else set())
    assert outcomes == {"accepted", *RejectReason} - {RejectReason.DUPLICATE_SEQ, RejectReason.OUT_OF_ORDER_SEQ,
                                                      RejectReason.UNKNOWN_TOPIC,  # the core's; the broker's
                                                      RejectReason.INTERNAL_ERROR}
    assert sum(1 for c in fast if c.readings and not c.rejections) > 100  # the fast path itself was exercised


def test_slow_path_is_as_strict_as_the_fast_path(monkeypatch):
    """Every payload through the salvage path alone (samples from parsed Python objects) gets the
    same verdict as through the fast path: no coercion sneaks in on either."""
    import random

    from pydantic import ValidationError

    from vigil.shell.contract import validation

    payloads = list(_mutations(random.Random(11)))
    limits = ContractLimits(max_payload_bytes=700)
    normal = [check(raw, topic, limits) for topic, raw in payloads]

    class NoFastPath:
        @staticmethod
        def model_validate_json(raw):
            raise ValidationError.from_exception_data("VitalsBatch", [])

    monkeypatch.setattr(validation, "VitalsBatch", NoFastPath)
    salvaged = [check(raw, topic, limits) for topic, raw in payloads]
    for a, b in zip(normal, salvaged):
        assert a.readings == b.readings
        assert [(r.reason, r.sample_index) for r in a.rejections] == [(r.reason, r.sample_index) for r in b.rejections]


def test_fast_path_readings_equal_the_models():
    from vigil.shell.contract.device import VitalsBatch
    from vigil.shell.contract.validation import to_reading

    raw = payload(sample(1), sample(2, sbp_mmhg=120, dbp_mmhg=80.5, steps=3, accel_g=0.25, skin_contact=False,
                                      manual={"on_oxygen": True, "acvpu": "C"}), sample(3, hr_bpm=None, manual={}))
    expected = [to_reading(s, "wr-1", "pt-1") for s in VitalsBatch.model_validate_json(raw).samples]
    assert check(raw).readings == expected
    assert type(expected[1].sbp) is float and type(expected[1].steps) is int


@pytest.mark.parametrize("where, raw", [
    # The attack: a reader that keeps the first value sees one thing, Vigil (last wins) another.
    ("batch", b'{"v":1,"device_id":"wr-2","device_id":"wr-1","samples":[]}'),
    ("sample", payload(sample(1)).replace(b'"spo2_pct": 97.0', b'"spo2_pct": 99.0, "spo2_pct": 80.0')),
    ("manual", payload(sample(1, manual={"acvpu": "A"})).replace(b'"acvpu": "A"', b'"acvpu": "A", "acvpu": "U"')),
])
def test_a_key_given_twice_is_refused_not_resolved_silently(where, raw):
    assert raw.count(b'"device_id"') == 2 or where != "batch"
    checked = check(raw)
    assert not checked.readings, f"duplicate key in the {where} must not become a reading"
    assert [r.reason for r in checked.rejections] == [RejectReason.SCHEMA_INVALID]
    assert "more than once" in checked.rejections[0].detail and checked.rejections[0].raw == raw


def test_colons_inside_strings_are_not_keys():
    # Every ts holds colons ("12:00:00+00:00"); an escaped character sends the pre-scan down its
    # regular-expression path. Neither may look like a duplicate key.
    raw = payload(sample(1), sample(2, manual={"acvpu": "A"}))
    assert raw.count(b":") > 20 and [r.seq for r in check(raw).readings] == [1, 2]
    escaped = raw.replace(b'"ts": "2026', b'"ts": "\\u0032026', 1)
    assert b"\\u0032026" in escaped and [r.seq for r in check(escaped).readings] == [1, 2]
