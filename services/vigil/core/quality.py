"""Signal-quality flags: when a wearable's numbers cannot be trusted, say so, and do not alert.

Heuristics tuned for wrist PPG wearables reporting every few seconds to minutes:
- motion artefact: vigorous movement, or a heart-rate jump that arrives with movement;
- off skin: the sensor says so;
- flat line: the same heart rate and SpO2, to the decimal, many times in a row (a stuck sensor);
- dropout: the device sent a sample without any of its optical vitals, or after a long gap;
- low battery: the device is about to stop;
- stale device: nothing received for a while (judged on the clock, in PatientMonitor.tick).
"""

from __future__ import annotations

from dataclasses import dataclass

MOTION = "motion_artefact"
OFF_SKIN = "off_skin"
FLAT_LINE = "flat_line"
DROPOUT = "dropout"
LOW_BATTERY = "low_battery"
STALE_DEVICE = "stale_device"
LATE = "late"  # a new sample from before the newest one: stored, not assessed

UNTRUSTED_OPTICAL = frozenset({MOTION, OFF_SKIN, FLAT_LINE})


@dataclass(frozen=True, slots=True)
class QualityLimits:
    motion_accel_g: float = 0.5
    motion_jump_accel_g: float = 0.2
    motion_jump_bpm: float = 30.0
    flat_line_repeats: int = 15
    dropout_gap_s: float = 600.0
    low_battery_pct: float = 15.0
    stale_after_s: float = 15 * 60.0


DEFAULT_QUALITY = QualityLimits()


def assess_quality(
    *,
    hr: float | None,
    spo2: float | None,
    rr: float | None,
    accel: float | None,
    contact: bool | None,
    battery: float | None,
    hr_median: float | None,
    repeats: int,
    gap_s: float | None,
    limits: QualityLimits = DEFAULT_QUALITY,
) -> tuple[str, ...]:
    """Flags for one sample, given a little of what came before (median HR, repeat count, gap)."""
    flags: list[str] = []
    if accel is not None:
        if accel >= limits.motion_accel_g:
            flags.append(MOTION)
        elif (
            accel >= limits.motion_jump_accel_g
            and hr is not None
            and hr_median is not None
            and abs(hr - hr_median) > limits.motion_jump_bpm
        ):
            flags.append(MOTION)
    if contact is False:
        flags.append(OFF_SKIN)
    if repeats >= limits.flat_line_repeats:
        flags.append(FLAT_LINE)
    if (hr is None and spo2 is None and rr is None) or (gap_s is not None and gap_s > limits.dropout_gap_s):
        flags.append(DROPOUT)
    if battery is not None and battery <= limits.low_battery_pct:
        flags.append(LOW_BATTERY)
    return tuple(flags)
