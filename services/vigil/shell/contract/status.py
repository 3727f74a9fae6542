"""A device's status message (`vigil/v1/devices/{id}/status`), checked as strictly as a vitals batch,
and accepted only for an enrolled device on its own topic (issue 11: a status on one device's topic
with another device's id in the payload was stored as that other device's status).

One verdict for both runtimes: the embedded pipeline stores an accepted status; the gateway forwards
nothing for it, and both keep a refusal as a dead letter with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from vigil.shell.contract.bounds import measure
from vigil.shell.contract.device import DeviceStatus
from vigil.shell.contract.topics import device_id_from_topic
from vigil.shell.contract.validation import ContractLimits, Rejection, RejectReason


@dataclass(frozen=True, slots=True)
class CheckedStatus:
    """Exactly one of `status` (accepted) and `rejection`."""

    status: DeviceStatus | None = None
    rejection: Rejection | None = None


def check_status_payload(topic: str, raw: bytes, *, received_at: float,
                         patient_for_device: Callable[[str], str | None], limits: ContractLimits) -> CheckedStatus:
    """The contract's verdict on one status message: size, structure, types, then the payload's
    device id against the topic's (`topic_mismatch`), then the roster (`unknown_device`)."""
    topic_device = device_id_from_topic(topic)

    def refuse(reason: RejectReason, detail: str) -> CheckedStatus:
        return CheckedStatus(rejection=Rejection(reason, detail, raw, topic, topic_device, received_at))

    if len(raw) > limits.max_payload_bytes:
        return refuse(RejectReason.OVERSIZE, f"{len(raw)} bytes > limit {limits.max_payload_bytes}")
    shape = measure(raw)
    overrun = shape.overrun
    if overrun is not None:
        return refuse(RejectReason.MALFORMED_JSON if overrun.malformed else RejectReason.SCHEMA_INVALID, overrun.detail)
    try:
        status = DeviceStatus.model_validate_json(raw)
    except ValidationError as exc:
        return refuse(RejectReason.SCHEMA_INVALID, str(exc.errors(include_url=False, include_input=False)[:2])[:300])
    if shape.keys != len(status.__pydantic_fields_set__):  # parsers disagree on which value of a key given twice wins
        return refuse(RejectReason.SCHEMA_INVALID, "a key appears more than once in the status object")
    if status.device_id != topic_device:
        return refuse(RejectReason.TOPIC_MISMATCH, f"payload device_id {status.device_id!r} on topic of {topic_device!r}: "
                      "a device reports only its own status")
    if patient_for_device(status.device_id) is None:
        return refuse(RejectReason.UNKNOWN_DEVICE, f"status of device {status.device_id!r}, which is not enrolled to a patient")
    return CheckedStatus(status=status)
