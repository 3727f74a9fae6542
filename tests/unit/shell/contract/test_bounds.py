"""The pre-scan: deep, wide or long payloads are refused before any parser recurses on them."""

import json
import sys

import pytest

from vigil.shell.contract.bounds import MAX_CONTAINERS, MAX_DEPTH, MAX_STRING_BYTES, MAX_VALUES, prescan
from vigil.shell.contract.validation import ContractLimits, RejectReason, check_vitals_payload

TOPIC = "vigil/v1/devices/wr-1/vitals"
GOOD = {"v": 1, "device_id": "wr-1", "firmware": "1.0",
        "samples": [{"ts": "2026-11-24T11:59:00+00:00", "seq": 1, "hr_bpm": 72, "manual": {"acvpu": "A"}}]}


def check(raw: bytes, limits: ContractLimits = ContractLimits()):
    return check_vitals_payload(TOPIC, raw, received_at=1795564800.0, patient_for_device={"wr-1": "pt-1"}.get,
                                limits=limits)


def test_the_reported_poison_is_refused_without_recursion():
    """30,000 nested `[` (60 KB, under the size limit) raised RecursionError in Pipeline.process."""
    limit = sys.getrecursionlimit()
    for raw in (b"[" * 30_000, b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        checked = check(raw)
        assert not checked.readings and checked.rejections[0].reason in (RejectReason.MALFORMED_JSON,
                                                                         RejectReason.SCHEMA_INVALID)
        assert checked.rejections[0].raw == raw
    assert sys.getrecursionlimit() == limit


def test_depth_is_measured_outside_strings():
    assert prescan(json.dumps(GOOD).encode()) is None
    inside = dict(GOOD, firmware="[[[[[[[[[[{{{{{{{{{{")  # brackets in a string are not nesting
    assert prescan(json.dumps(inside).encode()) is None
    escaped = dict(GOOD, firmware='\\"[[[[[[[[[["\\')  # escaped quotes and backslashes: the slow tokeniser
    assert prescan(json.dumps(escaped).encode()) is None


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 200, 5000])
def test_the_depth_limit_is_exact(depth):
    raw = b"[" * depth + b"]" * depth
    overrun = prescan(raw)
    assert (overrun is None) == (depth <= MAX_DEPTH)
    mixed = b"".join(b"[{"[i % 2: i % 2 + 1] for i in range(depth)) + b"".join(
        b"]}"[i % 2: i % 2 + 1] for i in reversed(range(depth)))
    assert (prescan(mixed) is None) == (depth <= MAX_DEPTH)
    if overrun is not None:
        assert not overrun.malformed and ("deeper" in overrun.detail or "objects and arrays" in overrun.detail)


def test_a_deep_value_in_one_sample_is_that_sample_s_problem():
    """A nested value of modest depth is still refused per sample: the other samples are kept."""
    samples = [dict(GOOD["samples"][0], seq=1), dict(GOOD["samples"][0], seq=2, hr_bpm=[[[1]]])]
    checked = check(json.dumps(dict(GOOD, samples=samples)).encode())
    assert [r.seq for r in checked.readings] == [1] and checked.rejections[0].sample_index == 1


@pytest.mark.parametrize("raw", [b'{"a":"', b'{"a":"\\"}', b'"\\', b'{"a":"b\\\\\\"}', b'"'])
def test_unterminated_strings_are_malformed(raw):
    overrun = prescan(raw)
    assert overrun is not None and overrun.malformed


def test_a_terminated_string_after_escaped_backslashes_is_fine():
    assert prescan(b'{"a":"b\\\\"}') is None


@pytest.mark.parametrize("raw", [b"[}", b"{]", b"[{]}", b"]", b"[[]", b'{"a":[1,2}]'])
def test_mismatched_brackets_are_malformed(raw):
    overrun = prescan(raw)
    assert overrun is not None and overrun.malformed and check(raw).rejections[0].reason == RejectReason.MALFORMED_JSON


def test_long_strings_are_refused():
    assert prescan(json.dumps(dict(GOOD, firmware="x" * MAX_STRING_BYTES)).encode()) is None
    overrun = prescan(json.dumps(dict(GOOD, firmware="x" * (MAX_STRING_BYTES + 1))).encode())
    assert overrun is not None and "string" in overrun.detail
    escaped = json.dumps(dict(GOOD, firmware="\\" * MAX_STRING_BYTES)).encode()
    assert prescan(escaped) is not None


def test_a_valid_firmware_of_64_astral_characters_fits():
    raw = json.dumps(dict(GOOD, firmware="\U0001F600" * 64)).encode()  # 12 escaped bytes each
    assert prescan(raw) is None


def test_too_many_values_keys_or_samples():
    many = b"[" + b",".join([b"0"] * (MAX_VALUES + 1)) + b"]"
    assert "values" in prescan(many).detail
    keys = b"{" + b",".join(b'"k%d":0' % i for i in range(MAX_VALUES + 1)) + b"}"
    assert "values" in prescan(keys).detail
    objects = b"[" + b",".join([b"{}"] * (MAX_CONTAINERS + 1)) + b"]"
    assert "objects and arrays" in prescan(objects).detail
    checked = check(keys, ContractLimits(max_payload_bytes=1 << 20))  # the bounds hold whatever the size limit
    assert checked.rejections[0].reason == RejectReason.SCHEMA_INVALID and "limit" in checked.rejections[0].detail


def test_the_largest_valid_batch_passes():
    sample = {"ts": "2026-11-24T11:59:00+00:00", "seq": 1, "hr_bpm": 72, "spo2_pct": 97, "rr_per_min": 15,
              "temp_c": 36.8, "sbp_mmhg": 120, "dbp_mmhg": 80, "steps": 1, "accel_g": 0.1, "battery_pct": 80,
              "skin_contact": True, "manual": {"on_oxygen": False, "acvpu": "A"}}
    raw = json.dumps(dict(GOOD, samples=[sample] * 600), separators=(",", ":")).encode()
    assert prescan(raw) is None


def test_a_stray_quote_costs_one_pass():
    """An unterminated string full of escaped quotes: linear, never a retry from every quote."""
    import time

    raw = b'"' + b'\\"' * 30_000
    started = time.perf_counter()
    assert prescan(raw).malformed
    assert time.perf_counter() - started < 5  # quadratic retries would take minutes
