"""A reading: one sample from one patient's device, in the core's own plain form."""

from __future__ import annotations

from dataclasses import dataclass

# LOINC codes and UCUM units of each vital, for exports (FHIR, InfluxDB field docs).
VITALS: dict[str, tuple[str, str, str]] = {
    # field: (LOINC, display, UCUM)
    "hr": ("8867-4", "Heart rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation by pulse oximetry", "%"),
    "rr": ("9279-1", "Respiratory rate", "/min"),
    "temp": ("8310-5", "Body temperature", "Cel"),
    "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "dbp": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
}
VITAL_NAMES: tuple[str, ...] = tuple(VITALS)


@dataclass(slots=True)
class Reading:
    """One sample. `t` is epoch seconds (event time). None means 'not measured'."""

    patient_id: str
    device_id: str
    t: float
    seq: int
    hr: float | None = None
    spo2: float | None = None
    rr: float | None = None
    temp: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    steps: int | None = None
    accel: float | None = None
    battery: float | None = None
    contact: bool | None = None
    on_oxygen: bool | None = None
    acvpu: str | None = None
