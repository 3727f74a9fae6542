"""Payloads that devices publish, version 1.

Every field name carries its unit (UCUM in docs/device-protocol.md), so a reading can never be
misread as another unit. Bounds here are *physical* limits (what a sensor could ever report),
not clinical limits: SpO2 140 % or a heart rate of -5 bpm is impossible and rejected, while
SpO2 80 % is possible and is exactly what Vigil must see.

Types are strict: nothing is coerced. A number is a JSON number (`true` or `"72"` where a number
belongs is refused, never read as 1 or 72), an integer field takes only an integer literal (not
`1.0`), `v` is the integer 1, `ts` is an RFC 3339 string with an offset (never an epoch number),
and NaN or Infinity are not numbers. Validate raw bytes with `model_validate_json`: in strict
*Python* mode pydantic would refuse the datetime strings too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

ACVPU = Literal["A", "C", "V", "P", "U"]
DEVICE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_SAMPLES_PER_BATCH = 600
# No coercion, no NaN or Infinity, unknown fields refused, models immutable.
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _integer_one(value: Any) -> Any:
    """`Literal[1]` alone takes `true` and `1.0` even in strict mode: only the integer 1 passes."""
    if type(value) is not int:
        raise PydanticCustomError("literal_error", "Input should be the integer 1")
    return value


Version = Annotated[Literal[1], BeforeValidator(_integer_one)]

# RFC 3339 date-time: seconds required, an offset required (the space for "T" is RFC 3339's own note).
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339)


def _rfc3339(value: Any) -> Any:
    """Even strict, pydantic reads "1795564740" (a string of digits) as epoch seconds: not here."""
    if type(value) is not str or not _RFC3339.match(value):
        raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 date-time string with an offset")
    return value


# The check above lets only RFC 3339 strings through; the datetime parser behind it is then told
# to take a string (strict mode hands it a Python str, which it would refuse).
Timestamp = Annotated[AwareDatetime, Strict(False), BeforeValidator(_rfc3339), Field(json_schema_extra={"pattern": RFC3339})]


class ManualEntry(BaseModel):
    """What the patient or a carer enters in the companion app: not measured by the sensor."""

    model_config = STRICT

    on_oxygen: bool | None = Field(
        default=None, description="True when breathing supplemental oxygen, false on room air."
    )
    acvpu: ACVPU | None = Field(
        default=None,
        description="Level of consciousness: Alert, new Confusion, responds to Voice, to Pain, Unresponsive.",
    )


class VitalSample(BaseModel):
    """One timestamped sample. Absent fields mean 'not measured', never zero."""

    model_config = ConfigDict(**STRICT, json_schema_extra={
        # The pair rule as JSON Schema can say it; "dbp below sbp" it cannot, and is checked here.
        "dependentRequired": {"sbp_mmhg": ["dbp_mmhg"], "dbp_mmhg": ["sbp_mmhg"]}})

    ts: Timestamp = Field(description="Time of measurement, RFC 3339 with offset (UTC preferred).")
    seq: int = Field(ge=0, le=2**53, description="Per-device sample counter; strictly increasing.")
    hr_bpm: float | None = Field(default=None, gt=0, le=300, description="Heart rate, beats/min ({beats}/min).")
    spo2_pct: float | None = Field(default=None, gt=0, le=100, description="Peripheral oxygen saturation, % (%).")
    rr_per_min: float | None = Field(default=None, ge=1, le=80, description="Respiratory rate, breaths/min ({breaths}/min).")
    temp_c: float | None = Field(default=None, ge=25, le=45, description="Body temperature, °C (Cel).")
    sbp_mmhg: float | None = Field(default=None, ge=40, le=300, description="Systolic blood pressure, mmHg (mm[Hg]); cuff readings only.")
    dbp_mmhg: float | None = Field(default=None, ge=20, le=200, description="Diastolic blood pressure, mmHg (mm[Hg]); cuff readings only.")
    steps: int | None = Field(default=None, ge=0, le=1000, description="Steps since the previous sample ({steps}).")
    accel_g: float | None = Field(default=None, ge=0, le=16, description="Mean acceleration magnitude minus gravity, g ([g]).")
    battery_pct: float | None = Field(default=None, ge=0, le=100, description="Device battery, % (%).")
    skin_contact: bool | None = Field(default=None, description="False when the sensor reports it is off the skin.")
    manual: ManualEntry | None = None

    @model_validator(mode="after")
    def _pressure_pair(self) -> "VitalSample":
        if (self.sbp_mmhg is None) != (self.dbp_mmhg is None):
            raise ValueError("sbp_mmhg and dbp_mmhg come together from one cuff reading")
        if self.sbp_mmhg is not None and self.dbp_mmhg is not None and self.dbp_mmhg >= self.sbp_mmhg:
            raise ValueError("dbp_mmhg must be below sbp_mmhg")
        return self


class VitalsBatch(BaseModel):
    """A batch of samples published to vigil/v1/devices/{device_id}/vitals at QoS 1."""

    model_config = STRICT

    v: Version = Field(description="Contract version: the integer 1.")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="Must equal the device id in the topic.")
    firmware: str | None = Field(default=None, max_length=64)
    samples: list[VitalSample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class DeviceStatus(BaseModel):
    """Retained message on vigil/v1/devices/{device_id}/status; the last will says offline."""

    model_config = STRICT

    v: Version = 1
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    state: Literal["online", "offline"]
    ts: Timestamp | None = None
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    firmware: str | None = Field(default=None, max_length=64)
