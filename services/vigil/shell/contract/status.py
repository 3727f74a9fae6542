"""A device's retained status message (`vigil/v1/devices/{id}/status`), checked as strictly as its
vitals: size, bounds, types, one key once, the topic's device. `online` / `offline` (the last will)."""

from __future__ import annotations

from pydantic import ValidationError

from vigil.shell.contract.bounds import measure
from vigil.shell.contract.device import DeviceStatus
from vigil.shell.contract.topics import device_id_from_topic
from vigil.shell.contract.validation import ContractLimits, Rejection, RejectReason


def check_status(topic: str, raw: bytes, received_at: float, limits: ContractLimits) -> DeviceStatus | Rejection:
    """The device's status, or why it is refused."""
    topic_device = device_id_from_topic(topic)

    def refuse(reason: RejectReason, detail: str) -> Rejection:
        return Rejection(reason, detail, raw, topic, topic_device, received_at)

    if len(raw) > limits.max_payload_bytes:
        return refuse(RejectReason.OVERSIZE, f"{len(raw)} bytes > limit {limits.max_payload_bytes}")
    shape = measure(raw)
    overrun = shape.overrun
    if overrun is not None:
        return refuse(RejectReason.MALFORMED_JSON if overrun.malformed else RejectReason.SCHEMA_INVALID,
                      overrun.detail)
    try:
        status = DeviceStatus.model_validate_json(raw)
    except ValidationError as exc:
        return refuse(RejectReason.SCHEMA_INVALID, str(exc.errors(include_url=False, include_input=False)[:2])[:300])
    if shape.keys != len(status.__pydantic_fields_set__):
        return refuse(RejectReason.SCHEMA_INVALID, "a key appears more than once in the status object")
    if status.device_id != topic_device:
        return refuse(RejectReason.TOPIC_MISMATCH, f"payload device_id {status.device_id!r} on topic of {topic_device!r}")
    return status
