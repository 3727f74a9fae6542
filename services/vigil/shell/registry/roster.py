"""The patient profile as pydantic models: the shape of the roster YAML and of the API."""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.shell.contract.device import DEVICE_ID_PATTERN
from vigil.core.profile import ClinicalContext, UsualRange

# One virtual ward unless the roster says otherwise: clinicians of this ward see every patient.
DEFAULT_WARD = "ward"

Channel = Literal["app", "sms", "email", "webhook"]


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class ClinicalProfile(BaseModel):
    """Clinical context that changes scoring."""

    model_config = ConfigDict(extra="forbid")
    spo2_scale: Literal[1, 2] = Field(1, description="2 for a prescribed SpO2 target of 88-92 %.")
    on_oxygen: bool = Field(False, description="Prescribed supplemental oxygen, when the app has no newer entry.")
    usual_ranges: dict[Literal["hr", "spo2", "rr", "temp", "sbp", "dbp"], Range] = Field(default_factory=dict)

    def to_context(self) -> ClinicalContext:
        return ClinicalContext(
            spo2_scale=self.spo2_scale,
            on_oxygen=self.on_oxygen,
            usual_ranges={name: UsualRange(r.low, r.high) for name, r in self.usual_ranges.items()},
        )


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time
    end: time
    timezone: str = Field("UTC", description="IANA zone of the recipient, e.g. Europe/London.")

    @model_validator(mode="after")
    def _known_zone(self) -> "QuietHours":
        from zoneinfo import ZoneInfo

        ZoneInfo(self.timezone)  # raises for an unknown zone: fail at load, not at 3 a.m.
        return self


class CareTeamMember(BaseModel):
    """A clinician or caregiver who hears about this patient's incidents."""

    model_config = ConfigDict(extra="forbid")
    member_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Stable id; default from the name.")
    name: str
    role: Literal["physician", "nurse", "caregiver", "on_call"] = "physician"
    email: str | None = None
    phone: str | None = Field(None, description="E.164, e.g. +447700900123.")
    webhook_url: str | None = Field(None, description="e.g. a pager or EHR integration endpoint.")
    channels: list[Channel] = Field(default_factory=lambda: ["app"], description="Tried in this order; all are used.")
    language: Literal["en", "zh"] = "en"
    quiet_hours: QuietHours | None = None
    escalation_order: int = Field(1, ge=1, description="1 is contacted first; higher numbers on escalation.")

    @property
    def stable_id(self) -> str:
        return self.member_id or "".join(c if c.isalnum() else "-" for c in self.name.lower()).strip("-")[:64]


class NotificationPreferences(BaseModel):
    """The patient's own preferences."""

    model_config = ConfigDict(extra="forbid")
    channels: list[Channel] = Field(default_factory=lambda: ["app"])
    phone: str | None = Field(None, description="E.164, for SMS.")
    email: str | None = None
    quiet_hours: QuietHours | None = Field(None, description="Non-critical messages wait; critical ones never do.")


class DeviceEnrolment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    model: str | None = None


class PatientProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    display_name: str | None = None
    ward: str = Field(DEFAULT_WARD, pattern=r"^[A-Za-z0-9._-]{1,64}$",
                      description="The ward whose nurses and physicians see this patient (vigil.core.access).")
    language: Literal["en", "zh"] = "en"
    devices: list[DeviceEnrolment] = Field(default_factory=list)
    clinical: ClinicalProfile = Field(default_factory=ClinicalProfile)
    care_team: list[CareTeamMember] = Field(default_factory=list)
    notifications: NotificationPreferences = Field(default_factory=NotificationPreferences)


class Roster(BaseModel):
    """A whole virtual ward: the roster YAML file in embedded mode."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    patients: list[PatientProfile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "Roster":
        seen_patients: set[str] = set()
        seen_devices: dict[str, str] = {}
        for patient in self.patients:
            if patient.patient_id in seen_patients:
                raise ValueError(f"patient {patient.patient_id} is listed twice")
            seen_patients.add(patient.patient_id)
            for device in patient.devices:
                other = seen_devices.setdefault(device.device_id, patient.patient_id)
                if other != patient.patient_id:
                    raise ValueError(f"device {device.device_id} is enrolled to both {other} and {patient.patient_id}")
        return self
