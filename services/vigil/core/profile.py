"""The clinical context of one patient that changes how readings are judged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class UsualRange:
    """A patient's usual range for one vital, as charted by their clinician."""

    low: float
    high: float

    @property
    def centre(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True, slots=True)
class ClinicalContext:
    """What the core needs to know about a patient; the registry builds it from the profile.

    - `spo2_scale` 2 is for a prescribed 88-92 % target (e.g. COPD with hypercapnia).
    - `on_oxygen` is the prescribed default when the app has no recent manual entry.
    - `usual_ranges` seed the personal baseline and widen single-vital thresholds for a patient
      whose normal is outside the population's (an athlete's resting heart rate of 45).
    """

    spo2_scale: Literal[1, 2] = 1
    on_oxygen: bool = False
    usual_ranges: dict[str, UsualRange] = field(default_factory=dict)


DEFAULT_CONTEXT = ClinicalContext()
