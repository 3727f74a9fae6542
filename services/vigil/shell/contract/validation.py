"""Check raw MQTT payloads against the device contract, without I/O.

Stateless checks live here (size, JSON, schema, physical ranges, clock, enrolment); the
stateful ones (duplicate and out-of-order sequence numbers) live in the clinical core's patient
state, because only the owner of a patient's stream knows what came before. Every rejection
carries its reason and the raw bytes, so the shell can count it, log it and keep it.

Both paths are strict and bounded: the fast path validates the raw bytes in pydantic's strict
JSON mode; anything it refuses is first measured by `prescan` (no recursion, bounded cost) and
only then parsed by `json.loads` to find which samples can be kept, each validated again in JSON
mode so that the slow path refuses exactly what the fast path refuses.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.shell.contract.bounds import measure
from vigil.shell.contract.device import DEVICE_ID_PATTERN, MAX_SAMPLES_PER_BATCH, STRICT, VitalSample, VitalsBatch
from vigil.shell.contract.topics import device_id_from_topic
from vigil.core.reading import Reading

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
DEFAULT_MAX_SAMPLE_AGE_S = 7 * 24 * 3600.0

_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


class RejectReason(StrEnum):
    """Why a payload or a sample was refused. Values are stable: they label metrics."""

    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_INVALID = "schema_invalid"
    IMPLAUSIBLE_VALUE = "implausible_value"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    DUPLICATE_SEQ = "duplicate_seq"
    OUT_OF_ORDER_SEQ = "out_of_order_seq"  # no longer produced: a late sample is kept (flag `late`), see core.patient
    UNKNOWN_TOPIC = "unknown_topic"  # a publish on a topic Vigil does not serve (counted by the embedded broker)
    INTERNAL_ERROR = "internal_error"  # Vigil failed on this message: a bug, kept with a trace id


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused payload (sample_index None) or one refused sample of a batch."""

    reason: RejectReason
    detail: str
    raw: bytes
    topic: str
    device_id: str | None
    received_at: float
    sample_index: int | None = None
    patient_id: str | None = None


@dataclass(slots=True)
class CheckedPayload:
    """The outcome of checking one payload: accepted readings and rejections, never both lost."""

    device_id: str | None
    patient_id: str | None
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ContractLimits:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    max_sample_age_s: float = DEFAULT_MAX_SAMPLE_AGE_S


class _Envelope(BaseModel):
    """The batch with its samples left unparsed, so that one bad sample spares the others."""

    model_config = ConfigDict(**{**STRICT, "frozen": False})

    v: int
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    firmware: str | None = Field(default=None, max_length=64)
    samples: list[Any] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


def _describe(error: ValidationError) -> tuple[RejectReason, str]:
    errors = error.errors(include_url=False, include_input=False)
    reason = RejectReason.SCHEMA_INVALID
    if errors and all(e["type"] in _RANGE_ERRORS or e["type"] == "value_error" for e in errors):
        reason = RejectReason.IMPLAUSIBLE_VALUE
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in errors[:5])
    return reason, detail


def to_reading(sample: VitalSample, device_id: str, patient_id: str) -> Reading:
    manual = sample.manual
    return Reading(
        patient_id=patient_id,
        device_id=device_id,
        t=sample.ts.timestamp(),
        seq=sample.seq,
        hr=sample.hr_bpm,
        spo2=sample.spo2_pct,
        rr=sample.rr_per_min,
        temp=sample.temp_c,
        sbp=sample.sbp_mmhg,
        dbp=sample.dbp_mmhg,
        steps=sample.steps,
        accel=sample.accel_g,
        battery=sample.battery_pct,
        contact=sample.skin_contact,
        on_oxygen=None if manual is None else manual.on_oxygen,
        acvpu=None if manual is None else manual.acvpu,
    )


def _readings(samples: list[VitalSample], device_id: str, patient_id: str,
              earliest: float, latest: float) -> list[Reading] | None:
    """`to_reading` for every sample of a valid batch, or None if any timestamp is outside
    [earliest, latest] (the general loop then words those rejections). The hot path: the same
    values as `to_reading`, built positionally from each model's field dict, without a lookup
    through the model class per attribute."""
    out: list[Reading] = []
    append = out.append
    for sample in samples:
        d = sample.__dict__
        t = d["ts"].timestamp()
        if not earliest <= t <= latest:
            return None
        manual = d["manual"]
        if manual is None:
            append(Reading(patient_id, device_id, t, d["seq"], d["hr_bpm"], d["spo2_pct"],
                           d["rr_per_min"], d["temp_c"], d["sbp_mmhg"], d["dbp_mmhg"], d["steps"], d["accel_g"],
                           d["battery_pct"], d["skin_contact"]))
        else:
            append(Reading(patient_id, device_id, t, d["seq"], d["hr_bpm"], d["spo2_pct"],
                           d["rr_per_min"], d["temp_c"], d["sbp_mmhg"], d["dbp_mmhg"], d["steps"], d["accel_g"],
                           d["battery_pct"], d["skin_contact"], manual.on_oxygen, manual.acvpu))
    return out


def check_vitals_payload(
    topic: str,
    raw: bytes,
    *,
    received_at: float,
    patient_for_device: Callable[[str], str | None],
    limits: ContractLimits = ContractLimits(),
) -> CheckedPayload:
    """Turn one MQTT vitals payload into readings and rejections.

    `patient_for_device` is the registry's enrolment lookup; `received_at` is epoch seconds.
    """
    topic_device = device_id_from_topic(topic)

    def refuse(reason: RejectReason, detail: str, device_id: str | None = topic_device) -> CheckedPayload:
        return CheckedPayload(device_id, None, rejections=[Rejection(reason, detail, raw, topic, device_id, received_at)])

    if len(raw) > limits.max_payload_bytes:
        return refuse(RejectReason.OVERSIZE, f"{len(raw)} bytes > limit {limits.max_payload_bytes}")
    if topic_device is None:
        return refuse(RejectReason.TOPIC_MISMATCH, f"not a v1 device topic: {topic[:128]!r}")

    latest_allowed = received_at + limits.max_clock_skew_s
    earliest_allowed = received_at - limits.max_sample_age_s
    samples: list[tuple[int, VitalSample]]
    rejections: list[Rejection] = []
    shape = measure(raw)
    overrun = shape.overrun
    if overrun is not None:
        return refuse(RejectReason.MALFORMED_JSON if overrun.malformed else RejectReason.SCHEMA_INVALID, overrun.detail)
    try:
        batch = VitalsBatch.model_validate_json(raw)
    except ValidationError:
        batch = None
    if batch is not None and shape.keys != keys_held(batch):
        batch = None  # a key given twice: the slow path names it
    if batch is not None:
        # Fast path: the whole batch is valid (nearly always).
        device_id = batch.device_id
        if device_id != topic_device:
            return refuse(RejectReason.TOPIC_MISMATCH, f"payload device_id {device_id!r} on topic of {topic_device!r}")
        patient_id = patient_for_device(device_id)
        if patient_id is None:
            return refuse(RejectReason.UNKNOWN_DEVICE, f"device {device_id!r} is not enrolled", device_id)
        readings = _readings(batch.samples, device_id, patient_id, earliest_allowed, latest_allowed)
        if readings is not None:
            return CheckedPayload(device_id, patient_id, readings)
        samples = list(enumerate(batch.samples))  # a timestamp out of bounds: the loop below
    else:
        salvaged = _salvage(raw, topic, received_at)
        if isinstance(salvaged, Refusal):
            return refuse(salvaged.reason, salvaged.detail)
        device_id, samples, rejections = salvaged
        if device_id != topic_device:
            return refuse(RejectReason.TOPIC_MISMATCH, f"payload device_id {device_id!r} on topic of {topic_device!r}")
        patient_id = patient_for_device(device_id)
        if patient_id is None:
            return refuse(RejectReason.UNKNOWN_DEVICE, f"device {device_id!r} is not enrolled", device_id)

    checked = CheckedPayload(device_id, patient_id)
    for index, sample in samples:
        t = sample.ts.timestamp()
        if t > latest_allowed or t < earliest_allowed:
            reason = RejectReason.FUTURE_TIMESTAMP if t > latest_allowed else RejectReason.STALE_TIMESTAMP
            detail = f"ts {sample.ts.isoformat()} is {t - received_at:+.0f} s from receipt"
            sample_raw = sample.model_dump_json(exclude_none=True).encode()
            rejections.append(Rejection(reason, detail, sample_raw, topic, device_id, received_at, index, patient_id))
            continue
        checked.readings.append(to_reading(sample, device_id, patient_id))
    checked.rejections = [
        r if r.patient_id else Rejection(r.reason, r.detail, r.raw, r.topic, r.device_id, r.received_at, r.sample_index, patient_id)
        for r in rejections
    ]
    return checked


@dataclass(frozen=True, slots=True)
class Refusal:
    """The whole payload is refused, for this reason."""

    reason: RejectReason
    detail: str


def _salvage(raw: bytes, topic: str, received_at: float
             ) -> Refusal | tuple[str, list[tuple[int, VitalSample]], list[Rejection]]:
    """The slow path, only for bad payloads: find out what exactly is wrong, keep what is good.
    Returns the refusal of the whole payload, or (device_id, good samples, rejected samples)."""
    try:  # bounded by `prescan` before this: no deep nesting, no huge strings
        document = json.loads(raw, parse_constant=_not_a_number, object_pairs_hook=_unique_keys)
    except DuplicateKey as exc:
        return Refusal(RejectReason.SCHEMA_INVALID, str(exc))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, NaN/Infinity, 4,300+ digit integers
        return Refusal(RejectReason.MALFORMED_JSON, str(exc)[:200])
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as exc:
        return Refusal(RejectReason.SCHEMA_INVALID, _describe(exc)[1])
    if envelope.v != 1:
        return Refusal(RejectReason.SCHEMA_INVALID, f"unsupported contract version v={envelope.v}")
    device_id = envelope.device_id
    samples: list[tuple[int, VitalSample]] = []
    rejections: list[Rejection] = []
    for index, candidate in enumerate(envelope.samples):
        sample_raw = json.dumps(candidate, separators=(",", ":")).encode()
        try:  # JSON mode, as the fast path: strict Python mode would refuse every ts string
            samples.append((index, VitalSample.model_validate_json(sample_raw)))
        except ValidationError as exc:
            reason, detail = _describe(exc)
            rejections.append(Rejection(reason, detail, sample_raw, topic, device_id, received_at, index))
    return device_id, samples, rejections


def keys_held(batch: VitalsBatch) -> int:
    """How many object keys the JSON a batch was parsed from held, one per field it set: compared
    with the pre-scan's count of keys in the bytes, a difference is a duplicate key."""
    held = len(batch.__pydantic_fields_set__)
    for sample in batch.samples:
        held += len(sample.__pydantic_fields_set__)
        manual = sample.manual
        if manual is not None:
            held += len(manual.__pydantic_fields_set__)
    return held


class DuplicateKey(ValueError):
    """A JSON object gives the same key twice: parsers disagree on which value wins, so a
    payload could say one thing to Vigil and another to any other reader. Refused."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKey(f"key {twice[:64]!r} appears more than once in one object")
    return document


def _not_a_number(literal: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(f"{literal} is not a JSON number")


def internal_error(topic: str, raw: bytes, received_at: float, cause: BaseException, log: logging.Logger,
                   where: str = "") -> Rejection:
    """Vigil failed on one message (a bug): its `internal_error` rejection, with a trace id that is
    also in `log`'s error line with the traceback, so the batch can go on without it."""
    trace_id = uuid.uuid4().hex[:16]
    log.error("message failed: dead-lettered, the batch goes on", exc_info=cause,
              extra={"trace_id": trace_id, "topic": topic})
    return Rejection(RejectReason.INTERNAL_ERROR, f"trace_id={trace_id}: {where}{type(cause).__name__}: {str(cause)[:200]}",
                     raw, topic, device_id_from_topic(topic), received_at)
