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
    return score_news2_values(obs.rr, obs.spo2, obs.on_oxygen, obs.sbp, obs.hr, obs.acvpu, obs.temp, obs.spo2_scale)


def score_news2_values(
    rr: float | None, spo2: float | None, on_oxygen: bool | None, sbp: float | None, hr: float | None,
    acvpu: str | None, temp: float | None, spo2_scale: Literal[1, 2] = 1,
) -> News2Score:
    """`score_news2` without building an `Observations` first (the per-reading hot path).

    The same sub-scores as the score_* functions above, with the rounding inlined
    (math.floor(x + 0.5) is _round_half_up(x) for whole numbers)."""
    if spo2_scale != 1 and spo2_scale != 2:
        raise ValueError(f"spo2_scale must be 1 or 2, not {spo2_scale!r}")
    parameters: dict[str, int] = {}
    missing: list[str] = []
    total = 0
    any_red = False
    floor = math.floor

    if rr is not None:
        rr = floor(rr + 0.5)
        points = 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3
        parameters["rr"] = points
        total += points
        any_red = points == 3
    else:
        missing.append("rr")
    if spo2 is not None:
        if spo2_scale == 2:
            # Scale 2 cannot be scored at >= 93 % without knowing about oxygen; assume air
            # (the lower score) but say so by listing air_or_oxygen as missing below.
            points = score_spo2_scale2(spo2, False if on_oxygen is None else on_oxygen)
        else:
            spo2 = floor(spo2 + 0.5)
            points = 3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0
        parameters["spo2"] = points
        total += points
        any_red = any_red or points == 3
    else:
        missing.append("spo2")
    if on_oxygen is not None:
        points = 2 if on_oxygen else 0
        parameters["air_or_oxygen"] = points
        total += points
    else:
        missing.append("air_or_oxygen")
    if sbp is not None:
        sbp = floor(sbp + 0.5)
        points = 3 if sbp <= 90 else 2 if sbp <= 100 else 1 if sbp <= 110 else 0 if sbp <= 219 else 3
        parameters["sbp"] = points
        total += points
        any_red = any_red or points == 3
    else:
        missing.append("sbp")
    if hr is not None:
        hr = floor(hr + 0.5)
        points = 3 if hr <= 40 else 1 if hr <= 50 else 0 if hr <= 90 else 1 if hr <= 110 else 2 if hr <= 130 else 3
        parameters["hr"] = points
        total += points
        any_red = any_red or points == 3
    else:
        missing.append("hr")
    if acvpu is not None:
        points = score_consciousness(acvpu)
        parameters["consciousness"] = points
        total += points
        any_red = any_red or points == 3
    else:
        missing.append("consciousness")
    if temp is not None:
        points = score_temperature(temp)
        parameters["temp"] = points
        total += points
        any_red = any_red or points == 3
    else:
        missing.append("temp")
    return News2Score(total, band_for(total, any_red), parameters, tuple(missing))
