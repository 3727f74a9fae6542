"""The device learns why (shell.contract.feedback): the error message, and its rate limit."""

import json

from vigil.shell.contract.feedback import DeviceError, FeedbackLimiter
from vigil.shell.contract.validation import check_vitals_payload

T0 = 1_800_000_000.0


def refusal(payload: dict, now: float = T0):
    raw = json.dumps(payload).encode()
    (rejection,) = check_vitals_payload("vigil/v1/devices/wr-1/vitals", raw, received_at=now,
                                        patient_for_device=lambda d: "pt-1").rejections
    return rejection


def test_a_misspelt_field_names_the_field_and_the_sample():
    rejection = refusal({"v": 1, "device_id": "wr-1", "samples": [
        {"ts": "2027-01-15T08:00:00Z", "seq": 7, "heart": 70}]}, now=1_800_000_000.0)
    error = DeviceError.of(rejection)
    body = json.loads(error.payload())
    assert error.topic == "vigil/v1/devices/wr-1/errors"
    assert body["reason"] in ("schema_invalid", "stale_timestamp", "future_timestamp")
    assert body["v"] == 1 and body["device_id"] == "wr-1" and "detail" in body


def test_attack_a_broken_device_cannot_flood_the_broker():
    limiter = FeedbackLimiter(every_s=10.0)
    error = DeviceError("wr-1", "schema_invalid", "samples.0.heart: Extra inputs are not permitted", T0, 0, 7)
    told = [limiter.admit(DeviceError("wr-1", error.reason, error.detail, T0 + k * 0.0005, 0, k)) for k in range(10_000)]
    assert sum(1 for t in told if t is not None) == 1 and limiter.suppressed == 9_999
    topic, payload = limiter.admit(DeviceError("wr-1", error.reason, error.detail, T0 + 11, 0, 10_001))
    body = json.loads(payload)
    assert body["left_out"] == 9_999 and body["seq"] == 10_001 and body["field"] == "samples.0.heart"
    assert limiter.admit(DeviceError("wr-2", error.reason, error.detail, T0 + 11)) is not None, "per device"
