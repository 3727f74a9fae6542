"""What a gateway tells the processor about each patient's coverage, beside the readings.

The gateway checks the contract, so only it sees refusals and device status. Per batch it sends
one note per enrolled device on `vigil.readings`, keyed by patient (the patient's partition, in
order with the readings): the device's refused samples by reason, and its status (`offline` is
its last will). A device with readings in the same batch is heard: its refusals are not noted.
"""

from __future__ import annotations

from collections.abc import Callable

from vigil.shell.contract.topics import status_topic, vitals_topic
from vigil.shell.contract.validation import ContractLimits, Rejection
from vigil.shell.mqtt.message import Message
from vigil.shell.contract.status import check_status_payload
from vigil.shell.streams.records import ReadingsRecord


class CoverageNotes:
    """One batch's notes, gathered per device."""

    def __init__(self, patient_for_device: Callable[[str], str | None]) -> None:
        self.patient_for_device = patient_for_device
        self.refusals: dict[str, tuple[str, float, dict[str, int]]] = {}  # device -> (patient, received_at, counts)
        self.statuses: dict[str, tuple[str, float, str]] = {}  # device -> (patient, received_at, state)

    def refused(self, rejection: Rejection) -> None:
        device_id = rejection.device_id
        patient_id = rejection.patient_id or (self.patient_for_device(device_id) if device_id else None)
        if patient_id is None or device_id is None:
            return
        entry = self.refusals.setdefault(device_id, (patient_id, rejection.received_at, {}))
        counts = entry[2]
        reason = str(rejection.reason)
        counts[reason] = counts.get(reason, 0) + 1

    def status(self, message: Message, limits: ContractLimits) -> None:
        checked = check_status_payload(message.topic, message.payload, received_at=message.received_at,
                                       patient_for_device=self.patient_for_device, limits=limits)
        status = checked.status
        if status is None:
            return
        patient_id = self.patient_for_device(status.device_id)
        if patient_id is not None:
            self.statuses[status.device_id] = (patient_id, message.received_at, status.state)

    def records(self, heard_topics: set[str] | frozenset[str] = frozenset()) -> list[ReadingsRecord]:
        """The notes to send; devices with readings on `heard_topics` in this batch have no refusal note."""
        out = []
        for device_id, (patient_id, received_at, counts) in self.refusals.items():
            topic = vitals_topic(device_id)
            if topic not in heard_topics:
                out.append(ReadingsRecord.note(patient_id, device_id, topic, received_at, refused=counts))
        for device_id, (patient_id, received_at, state) in self.statuses.items():
            out.append(ReadingsRecord.note(patient_id, device_id, status_topic(device_id),
                                           received_at, status=state))
        return out

