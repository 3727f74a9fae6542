"""NEWS2, exactly as the Royal College of Physicians' 2017 chart defines it.

Continuous wearable values are rounded the way a nurse charts them (whole numbers; temperature
to one decimal, half away from zero) before they are placed in a band, so 90.4 bpm scores as 90.
A parameter that was not observed is never scored as normal: the result lists it as missing and
is flagged partial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Band = Literal["low", "low-medium", "medium", "high"]
PARAMETERS = ("rr", "spo2", "air_or_oxygen", "sbp", "hr", "consciousness", "temp")


def _round_half_up(value: float, digits: int = 0) -> float:
    scale = 10**digits
    return math.floor(value * scale + 0.5) / scale


def score_respiration_rate(rr: float) -> int:
    rr = _round_half_up(rr)
    if rr <= 8:
        return 3
    if rr <= 11:
        return 1
    if rr <= 20:
        return 0
    if rr <= 24:
        return 2
    return 3


def score_spo2_scale1(spo2: float) -> int:
    spo2 = _round_half_up(spo2)
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def score_spo2_scale2(spo2: float, on_oxygen: bool) -> int:
    """Scale 2: for a prescribed target of 88-92 % (e.g. hypercapnic respiratory failure).

    At 93 % or more the score depends on oxygen: on room air it is 0; on oxygen it rises,
    because oxygen is then driving saturation above target.
    """
    spo2 = _round_half_up(spo2)
    if spo2 <= 83:
        return 3
    if spo2 <= 85:
        return 2
    if spo2 <= 87:
        return 1
    if spo2 <= 92 or not on_oxygen:
        return 0
    if spo2 <= 94:
        return 1
    if spo2 <= 96:
        return 2
    return 3


def score_air_or_oxygen(on_oxygen: bool) -> int:
    return 2 if on_oxygen else 0


def score_systolic_bp(sbp: float) -> int:
    sbp = _round_half_up(sbp)
    if sbp <= 90:
        return 3
    if sbp <= 100:
        return 2
    if sbp <= 110:
        return 1
    if sbp <= 219:
        return 0
    return 3


def score_pulse(hr: float) -> int:
    hr = _round_half_up(hr)
    if hr <= 40:
        return 3
    if hr <= 50:
        return 1
    if hr <= 90:
        return 0
    if hr <= 110:
        return 1
    if hr <= 130:
        return 2
    return 3


def score_consciousness(acvpu: str) -> int:
    if acvpu not in ("A", "C", "V", "P", "U"):
        raise ValueError(f"consciousness must be one of A, C, V, P, U, not {acvpu!r}")
    return 0 if acvpu == "A" else 3


def score_temperature(temp: float) -> int:
    temp = _round_half_up(temp, 1)
    if temp <= 35.0:
        return 3
    if temp <= 36.0:
        return 1
    if temp <= 38.0:
        return 0
    if temp <= 39.0:
        return 1
    return 2


@dataclass(frozen=True, slots=True)
class Observations:
    """One set of observations. None means not observed."""

    rr: float | None = None
    spo2: float | None = None
    on_oxygen: bool | None = None
    sbp: float | None = None
    hr: float | None = None
    acvpu: str | None = None
    temp: float | None = None
    spo2_scale: Literal[1, 2] = 1


@dataclass(frozen=True, slots=True)
class News2Score:
    score: int
    band: Band
    parameters: dict[str, int]
    missing: tuple[str, ...] = field(default=())

    @property
    def partial(self) -> bool:
        """True when a parameter was not observed: the true score may be higher."""
        return bool(self.missing)

    @property
    def red_parameters(self) -> tuple[str, ...]:
        """Parameters scoring 3 on their own ('red score')."""
        return tuple(name for name, points in self.parameters.items() if points == 3)

    def as_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "band": self.band,
            "parameters": dict(self.parameters),
            "missing": list(self.missing),
            "partial": self.partial,
        }


def band_for(score: int, any_red: bool) -> Band:
    """Clinical risk band: 7+ high, 5-6 medium, a single red 3 low-medium, else low."""
    if score >= 7:
        return "high"
    if score >= 5:
        return "medium"
    if any_red:
        return "low-medium"
    return "low"


def score_news2(obs: Observations) -> News2Score:
    """Score a set of observations; missing parameters add no points and are listed."""
    if obs.spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, not {obs.spo2_scale!r}")
    parameters: dict[str, int] = {}
    missing: list[str] = []
    if obs.rr is not None:
        parameters["rr"] = score_respiration_rate(obs.rr)
    else:
        missing.append("rr")
    if obs.spo2 is not None:
        if obs.spo2_scale == 2:
            if obs.on_oxygen is None:
                # Scale 2 cannot be scored at >= 93 % without knowing about oxygen; assume air
                # (the lower score) but say so by listing air_or_oxygen as missing below.
                parameters["spo2"] = score_spo2_scale2(obs.spo2, False)
            else:
                parameters["spo2"] = score_spo2_scale2(obs.spo2, obs.on_oxygen)
        else:
            parameters["spo2"] = score_spo2_scale1(obs.spo2)
    else:
        missing.append("spo2")
    if obs.on_oxygen is not None:
        parameters["air_or_oxygen"] = score_air_or_oxygen(obs.on_oxygen)
    else:
        missing.append("air_or_oxygen")
    if obs.sbp is not None:
        parameters["sbp"] = score_systolic_bp(obs.sbp)
    else:
        missing.append("sbp")
    if obs.hr is not None:
        parameters["hr"] = score_pulse(obs.hr)
    else:
        missing.append("hr")
    if obs.acvpu is not None:
        parameters["consciousness"] = score_consciousness(obs.acvpu)
    else:
        missing.append("consciousness")
    if obs.temp is not None:
        parameters["temp"] = score_temperature(obs.temp)
    else:
        missing.append("temp")
    total = sum(parameters.values())
    any_red = any(points == 3 for points in parameters.values())
    return News2Score(total, band_for(total, any_red), parameters, tuple(missing))
