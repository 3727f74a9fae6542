"""A device's status is accepted only on its own topic, for an enrolled device (issue 11)."""

from __future__ import annotations

import pytest

from vigil.shell.contract.status import check_status_payload
from vigil.shell.contract.validation import ContractLimits

ROSTER = {"wr-a": "pt-a", "wr-b": "pt-b"}


def verdict(topic_device: str, payload: bytes):  # noqa: ANN201
    return check_status_payload(f"vigil/v1/devices/{topic_device}/status", payload, received_at=5.0,
                                patient_for_device=ROSTER.get, limits=ContractLimits())


def test_a_devices_own_status_is_accepted():
    checked = verdict("wr-a", b'{"v":1,"device_id":"wr-a","state":"offline"}')
    assert checked.rejection is None and checked.status.state == "offline"


@pytest.mark.parametrize("topic_device, payload, reason", [
    ("wr-a", b'{"v":1,"device_id":"wr-b","state":"offline"}', "topic_mismatch"),  # speaking for another device
    ("wr-b", b'{"v":1,"device_id":"wr-a","state":"online"}', "topic_mismatch"),
    ("wr-zz", b'{"v":1,"device_id":"wr-zz","state":"online"}', "unknown_device"),  # not enrolled
    ("wr-a", b'{"v":1,"state":"online"}', "schema_invalid"),
    ("wr-a", b'{"v":1,"device_id":"wr-a","state":"online"', "malformed_json"),
])
def test_spoofed_unknown_and_malformed_statuses_are_refused_with_a_reason(topic_device, payload, reason):
    checked = verdict(topic_device, payload)
    assert checked.status is None and checked.rejection.reason == reason
    assert checked.rejection.device_id == topic_device and checked.rejection.raw == payload
