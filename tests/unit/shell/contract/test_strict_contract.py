"""The attacks on a strict contract: every coercion refused, on the fast path and the slow one.

Each payload pairs one hostile sample with a good one, so that the slow (salvage) path is the
one that decides; the same hostile value in a batch alone is refused by the fast path. Both must
agree: the hostile sample is `schema_invalid`, the good one is kept.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest

from vigil.shell.contract.device import DeviceStatus, VitalsBatch
from vigil.shell.contract.validation import RejectReason, check_vitals_payload

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
TOPIC = "vigil/v1/devices/wr-1/vitals"
TS = (NOW - timedelta(seconds=30)).isoformat()


def good(seq: int = 1) -> str:
    return f'{{"ts":"{(NOW - timedelta(seconds=60 - seq)).isoformat()}","seq":{seq},"hr_bpm":72}}'


def check(raw: bytes):
    return check_vitals_payload(TOPIC, raw, received_at=NOW.timestamp(), patient_for_device={"wr-1": "pt-1"}.get)


def batch(*samples: str, v: str = "1", device_id: str = '"wr-1"') -> bytes:
    return f'{{"v":{v},"device_id":{device_id},"samples":[{",".join(samples)}]}}'.encode()


# (field, JSON literal): a value of the wrong JSON type, which a lax parser would coerce.
COERCIONS = [
    ("hr_bpm", "true"), ("hr_bpm", "false"), ("hr_bpm", '"72"'), ("hr_bpm", '"72.0"'), ("hr_bpm", "[72]"),
    ("hr_bpm", '{"value":72}'), ("spo2_pct", '"97"'), ("spo2_pct", "true"), ("temp_c", '"36.8"'),
    ("rr_per_min", "[15]"), ("battery_pct", "true"), ("accel_g", '"0.1"'),
    ("seq", '"5"'), ("seq", "5.0"), ("seq", "true"), ("seq", "5.5"), ("seq", "[5]"),
    ("steps", "3.0"), ("steps", '"3"'), ("steps", "true"),
    ("skin_contact", "1"), ("skin_contact", "0"), ("skin_contact", '"true"'), ("skin_contact", '"yes"'),
    ("ts", "1795564740"), ("ts", "1795564740.5"), ("ts", "true"), ("ts", '["' + TS + '"]'),
    ("ts", '{"iso":"' + TS + '"}'), ("ts", '"2026-11-24T11:59:00"'), ("ts", '"1795564740"'), ("ts", '"2026-11-24T11:59Z"'), ("ts", '"2026-11-24"'),
    ("ts", '"20261124T115900Z"'),
    ("manual", '{"on_oxygen":1}'), ("manual", '{"on_oxygen":"false"}'), ("manual", '{"acvpu":1}'),
    ("manual", '"A"'), ("manual", "[]"),
]


@pytest.mark.parametrize("field, literal", COERCIONS)
def test_wrong_types_are_refused_never_coerced(field, literal):
    hostile = json.loads(good(2))
    hostile[field] = "HOSTILE"
    hostile_json = json.dumps(hostile).replace('"HOSTILE"', literal)
    checked = check(batch(good(1), hostile_json))
    assert [r.seq for r in checked.readings] == [1], "the good sample is kept"
    (rejection,) = checked.rejections
    assert rejection.reason == RejectReason.SCHEMA_INVALID and rejection.sample_index == 1, rejection.detail
    alone = check(batch(hostile_json))  # the fast path's verdict when the batch has nothing else
    assert not alone.readings and alone.rejections[0].reason == RejectReason.SCHEMA_INVALID


def test_a_heart_rate_of_true_is_never_one_bpm():
    """The reported case: `"hr_bpm": true` was stored as a heart rate of 1 bpm."""
    checked = check(batch('{"ts":"%s","seq":1,"hr_bpm":true}' % TS))
    assert not checked.readings and checked.rejections[0].reason == RejectReason.SCHEMA_INVALID


@pytest.mark.parametrize("v", ['"1"', "true", "1.0", "1e0", "null", "[1]", "2", "0"])
def test_the_version_is_the_integer_one(v):
    checked = check(batch(good(1), v=v))
    assert not checked.readings and checked.rejections[0].reason == RejectReason.SCHEMA_INVALID
    assert checked.rejections[0].sample_index is None


@pytest.mark.parametrize("device_id", ["7", "true", '["wr-1"]', "null"])
def test_the_device_id_is_a_string(device_id):
    assert check(batch(good(1), device_id=device_id)).rejections[0].reason == RejectReason.SCHEMA_INVALID


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_numbers(literal):
    checked = check(batch(good(1), good(2).replace('"hr_bpm":72', f'"hr_bpm":{literal}')))
    assert not checked.readings  # not JSON at all: the whole payload is malformed
    assert checked.rejections[0].reason == RejectReason.MALFORMED_JSON
    assert check(batch(good(1).replace('"hr_bpm":72', f'"hr_bpm":{literal}'))).rejections[0].reason in (
        RejectReason.MALFORMED_JSON, RejectReason.SCHEMA_INVALID)


@pytest.mark.parametrize("number, reason", [
    ("1e400", RejectReason.SCHEMA_INVALID),  # overflows to infinity: not a finite number
    ("-1e400", RejectReason.SCHEMA_INVALID),
    ("1" + "0" * 400, RejectReason.SCHEMA_INVALID),  # no finite float holds it
    ("1e-400", RejectReason.IMPLAUSIBLE_VALUE),  # underflows to 0: not > 0
])
def test_huge_and_tiny_numbers(number, reason):
    checked = check(batch(good(1), good(2).replace('"hr_bpm":72', f'"hr_bpm":{number}')))
    assert [r.seq for r in checked.readings] == [1]
    assert checked.rejections[0].reason == reason and checked.rejections[0].sample_index == 1


def test_an_integer_over_python_s_digit_limit_is_refused_not_raised():
    """json.loads raises ValueError (not JSONDecodeError) past 4,300 digits: refused, never a crash."""
    digits = "9" * 5000
    checked = check(batch(good(1), good(2).replace('"seq":2', f'"seq":{digits}')))
    assert not checked.readings and checked.rejections[0].reason in (RejectReason.MALFORMED_JSON,
                                                                     RejectReason.SCHEMA_INVALID)


@pytest.mark.parametrize("seq", ["9007199254740993", "-1", "1.5e3", "12345678901234567890123"])
def test_sequence_numbers_are_integers_in_range(seq):
    checked = check(batch(good(1), good(2).replace('"seq":2', f'"seq":{seq}')))
    assert [r.seq for r in checked.readings] == [1]
    assert checked.rejections[0].reason in (RejectReason.SCHEMA_INVALID, RejectReason.IMPLAUSIBLE_VALUE)


def test_integers_are_fine_where_a_number_is_expected():
    checked = check(batch('{"ts":"%s","seq":1,"hr_bpm":72,"spo2_pct":97,"temp_c":37,"sbp_mmhg":120,"dbp_mmhg":80}' % TS))
    assert not checked.rejections and checked.readings[0].hr == 72 and type(checked.readings[0].hr) is float


def test_null_is_not_measured():
    checked = check(batch('{"ts":"%s","seq":1,"hr_bpm":null}' % TS))
    assert not checked.rejections and checked.readings[0].hr is None


@pytest.mark.parametrize("text", ['"\\ud800"', '"\\u0000"', '"wr-1\\u0000"', '"\u00e9"', '"\\udc00\\ud800"'])
def test_unicode_in_strings_never_crashes(text):
    for raw in (batch(good(1), device_id=text), batch(good(1).replace('"hr_bpm":72', f'"firmware":{text}'))):
        checked = check(raw)
        assert not checked.readings and checked.rejections[0].reason == RejectReason.SCHEMA_INVALID


def test_invalid_utf8_is_malformed():
    checked = check(batch(good(1)).replace(b"wr-1", b"wr-\xff"))
    assert checked.rejections[0].reason == RejectReason.MALFORMED_JSON


@pytest.mark.parametrize("status", [
    b'{"v":"1","device_id":"wr-1","state":"online"}', b'{"v":true,"device_id":"wr-1","state":"online"}',
    b'{"v":1.0,"device_id":"wr-1","state":"online"}', b'{"v":1,"device_id":"wr-1","state":"online","ts":1795564740}',
    b'{"v":1,"device_id":"wr-1","state":"online","battery_pct":"80"}',
    b'{"v":1,"device_id":"wr-1","state":"online","battery_pct":true}',
    b'{"v":1,"device_id":"wr-1","state":"online","battery_pct":NaN}',
    b'{"v":1,"device_id":"wr-1","state":"online","ts":"2026-11-24T11:59:00"}',
    b'{"v":1,"device_id":7,"state":"online"}', b'{"v":1,"device_id":"wr-1","state":true}',
])
def test_device_status_is_as_strict(status):
    with pytest.raises(ValueError):
        DeviceStatus.model_validate_json(status)


def test_a_good_status_still_passes():
    status = DeviceStatus.model_validate_json(b'{"v":1,"device_id":"wr-1","state":"online","ts":"%s","battery_pct":80}'
                                              % TS.encode())
    assert status.battery_pct == 80 and status.ts is not None


def test_the_fast_path_alone_refuses_coercion():
    """The model itself, as the fast path runs it on raw bytes."""
    with pytest.raises(ValueError):
        VitalsBatch.model_validate_json(batch('{"ts":"%s","seq":1,"hr_bpm":"72"}' % TS))
    with pytest.raises(ValueError):
        VitalsBatch.model_validate_json(batch('{"ts":1795564740,"seq":1}'))
