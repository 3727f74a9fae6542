"""Is a reading in the patient's usual range? The words the patient app puts beside each value.

The patient's charted usual range (ClinicalContext.usual_ranges) when the clinician set one;
otherwise the range NEWS2 scores 0 for that vital (SpO2 on the patient's scale). A vital
without either (steps, battery) has no usual range: None. Pure.
"""

from __future__ import annotations

from vigil.core.news2 import (
    score_pulse,
    score_respiration_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic_bp,
    score_temperature,
)
from vigil.core.profile import ClinicalContext


def in_usual_range(vital: str, value: float, context: ClinicalContext) -> bool | None:
    usual = context.usual_ranges.get(vital)
    if usual is not None:
        return usual.low <= value <= usual.high
    if vital == "spo2":
        score = score_spo2_scale2(value, context.on_oxygen) if context.spo2_scale == 2 else score_spo2_scale1(value)
        return score == 0
    scorer = {"hr": score_pulse, "rr": score_respiration_rate, "sbp": score_systolic_bp,
              "temp": score_temperature}.get(vital)
    return None if scorer is None else scorer(value) == 0
