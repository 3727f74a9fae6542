"""The in-memory registry: enrolment lookups on the hot path, profiles for the rest."""

from __future__ import annotations

from pathlib import Path

import yaml

from vigil.core.profile import ClinicalContext
from vigil.shell.registry.roster import DeviceEnrolment, PatientProfile, Roster


def load_roster(path: str | Path) -> Roster:
    """Read a roster YAML file; a bad file is a clear error naming the problem."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    return Roster.model_validate(document)


class Registry:
    def __init__(self, roster: Roster | None = None) -> None:
        self._patients: dict[str, PatientProfile] = {}
        self._device_to_patient: dict[str, str] = {}
        for patient in (roster.patients if roster else []):
            self.enrol_patient(patient)

    def enrol_patient(self, patient: PatientProfile) -> None:
        self._patients[patient.patient_id] = patient
        for device in patient.devices:
            self._device_to_patient[device.device_id] = patient.patient_id

    def enrol_device(self, device_id: str, patient_id: str, model: str | None = None) -> None:
        """Map a device to an enrolled patient (moving it if it was someone else's)."""
        patient = self._patients[patient_id]
        previous = self._device_to_patient.get(device_id)
        if previous and previous != patient_id:
            old = self._patients[previous]
            old.devices = [d for d in old.devices if d.device_id != device_id]
        if all(d.device_id != device_id for d in patient.devices):
            patient.devices.append(DeviceEnrolment(device_id=device_id, model=model))
        self._device_to_patient[device_id] = patient_id

    def patient_for_device(self, device_id: str) -> str | None:
        return self._device_to_patient.get(device_id)

    def profile(self, patient_id: str) -> PatientProfile | None:
        return self._patients.get(patient_id)

    def context_for(self, patient_id: str) -> ClinicalContext:
        patient = self._patients.get(patient_id)
        return patient.clinical.to_context() if patient else ClinicalContext()

    def patients(self) -> list[PatientProfile]:
        return list(self._patients.values())

    def __len__(self) -> int:
        return len(self._patients)
