"""The facts of one alert: everything an explanation may say, and nothing that identifies anyone.

`facts_from_alert` copies an allow-list of fields out of `Alert.as_dict()` (plus the optional
`baselines`, `trends`, `on_oxygen` and `spo2_scale` keys), rounds every number the way the texts
will quote it, and drops the rest. Ids, names, devices, birth dates and timestamps never get in,
because nothing outside the allow-list is copied: privacy by construction, not by scrubbing.

The same facts drive the templates, the LLM prompt, the output checks and the cache key, so a
number the checks accept is exactly a number a template could have printed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from vigil.core.events import Alert

Language = Literal["en", "zh"]
LANGUAGES: tuple[str, ...] = ("en", "zh")

# Alert value key -> (short vital name or None, unit, decimals). Decimals chosen so the text can
# quote the number exactly as a clinician would chart it: integers for HR, SpO2, RR, BP.
VALUE_KEYS: dict[str, tuple[str | None, str, int]] = {
    "hr_bpm": ("hr", "bpm", 0),
    "spo2_pct": ("spo2", "%", 0),
    "rr_per_min": ("rr", "/min", 0),
    "temp_c": ("temp", "°C", 1),
    "sbp_mmhg": ("sbp", "mmHg", 0),
    "dbp_mmhg": ("dbp", "mmHg", 0),
    "battery_pct": (None, "%", 0),
    "hr_variability_bpm": (None, "bpm", 1),
    "activity_g": (None, "g", 2),
    "silent_for_min": (None, "min", 0),
    "untrusted_for_min": (None, "min", 0),
    "risk_pct": (None, "%", 0),
    "anomaly_score": (None, "", 2),
}
VITAL_UNITS: dict[str, tuple[str, int]] = {
    "hr": ("bpm", 0), "spo2": ("%", 0), "rr": ("/min", 0), "temp": ("°C", 1), "sbp": ("mmHg", 0), "dbp": ("mmHg", 0),
}
# Booleans that explain a reading (an irregular rhythm); every other non-number is dropped.
FLAG_KEYS = frozenset({"irregular"})

# Numbers inside clinical tokens are names, not quantities: SpO2 is not "2".
_TOKEN_WITH_DIGIT = re.compile(r"(?<![A-Za-z0-9])(SpO2|SaO2|FiO2|PaO2|NEWS2|CO2|O2)(?![A-Za-z0-9])", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")


def round_to(value: float, decimals: int) -> float | int:
    """Half away from zero (not banker's), so 14.5 % battery is quoted as 15 %, as people expect."""
    scaled = abs(float(value)) * 10**decimals + 0.5
    rounded = int(scaled) / 10**decimals * (1 if value >= 0 else -1)
    return int(rounded) if decimals == 0 else round(rounded, decimals)


def numbers_in(text: str) -> list[float]:
    """Every quantity written in digits in `text` (absolute values; names like SpO2 skipped)."""
    plain = _TOKEN_WITH_DIGIT.sub(" ", unicodedata.normalize("NFKC", text))
    return [float(m.group()) for m in _NUMBER.finditer(plain)]


class Measurement(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # the alert's value key, e.g. spo2_pct
    vital: str | None  # hr, spo2, rr, temp, sbp, dbp; None for device and model values
    value: float | int
    unit: str


class News2Facts(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: int
    band: str
    parameters: dict[str, int]
    missing: tuple[str, ...] = ()


class ContributorFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    vital: str
    value: float | int
    baseline: float | int
    z: float
    unit: str


class AlertFacts(BaseModel):
    """What an explanation may say about one alert. No identifier of a person or device."""

    model_config = ConfigDict(frozen=True)

    kind: str
    category: Literal["clinical", "technical"]
    severity: Literal["low", "medium", "high", "critical"]
    rule: str
    values: tuple[Measurement, ...] = ()
    flags: dict[str, bool] = {}
    baselines: dict[str, float | int] = {}
    trends_per_hour: dict[str, float] = {}
    news2: News2Facts | None = None
    risk_pct: int | None = None
    anomaly_score: float | None = None
    contributors: tuple[ContributorFacts, ...] = ()
    on_oxygen: bool | None = None
    spo2_scale: int | None = None
    language: Language = "en"
    emergency_number: str = "999"

    def as_json(self) -> str:
        """Canonical JSON (sorted keys): what the model is sent and what the cache key hashes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def key(self) -> str:
        """A stable hash of the facts: equal facts, equal key, in any process."""
        return hashlib.sha256(self.as_json().encode()).hexdigest()[:32]

    @cached_property
    def supported_numbers(self) -> frozenset[float]:
        """Every number a text may state: all numbers in the facts, including those in the rule
        text and the emergency number. Absolute values, so "fell by 3.5" matches a trend of -3.5."""
        found: set[float] = set()

        def walk(node: object) -> None:
            if isinstance(node, bool):
                return
            if isinstance(node, (int, float)):
                found.add(round(abs(float(node)), 6))
            elif isinstance(node, str):
                found.update(round(n, 6) for n in numbers_in(node))
            elif isinstance(node, dict):
                for v in node.values():
                    walk(v)
            elif isinstance(node, (list, tuple)):
                for v in node:
                    walk(v)

        data = self.model_dump(mode="json")
        data.pop("language")
        data.pop("kind")  # names, not quantities
        walk(data)
        return frozenset(found)

    def measurement(self, name: str) -> Measurement | None:
        return next((m for m in self.values if m.name == name), None)


def _scrub(text: str, secrets: list[str]) -> str:
    """Belt and braces: the rule text is generated by the core and holds no id, but if one ever
    got in, it must not reach a model."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "[redacted]")
    return text


def facts_from_alert(alert: Alert | Mapping[str, Any], *, language: str = "en", emergency_number: str = "999") -> AlertFacts:
    """Facts from an Alert or `Alert.as_dict()` (optionally with `baselines`, `trends`, `on_oxygen`, `spo2_scale`)."""
    if isinstance(alert, Alert):
        alert = alert.as_dict()
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    values: list[Measurement] = []
    flags: dict[str, bool] = {}
    for key, raw in dict(alert.get("values") or {}).items():
        if key in FLAG_KEYS and isinstance(raw, bool):
            flags[key] = raw
        spec = VALUE_KEYS.get(key)
        if spec is None or isinstance(raw, bool) or not isinstance(raw, (int, float)):
            continue  # news2_* live in the NEWS2 block; unknown keys are never copied
        vital, unit, decimals = spec
        values.append(Measurement(name=key, vital=vital, value=round_to(raw, decimals), unit=unit))

    contributors: list[ContributorFacts] = []
    for c in list(alert.get("contributors") or [])[:3]:
        vital = str(c.get("vital", ""))
        if vital not in VITAL_UNITS:
            continue
        unit, decimals = VITAL_UNITS[vital]
        contributors.append(ContributorFacts(
            vital=vital, value=round_to(float(c["value"]), decimals), baseline=round_to(float(c["baseline"]), decimals),
            z=round_to(float(c.get("z", 0.0)), 1), unit=unit,
        ))

    # Personal baselines: the alert's own, else those the model reported for its contributors.
    baselines: dict[str, float | int] = {c.vital: c.baseline for c in contributors}
    for vital, mean in dict(alert.get("baselines") or {}).items():
        if vital in VITAL_UNITS and isinstance(mean, (int, float)) and not isinstance(mean, bool):
            baselines[vital] = round_to(mean, VITAL_UNITS[vital][1])
    trends = {v: round_to(float(d), 1) for v, d in dict(alert.get("trends") or {}).items()
              if v in VITAL_UNITS and isinstance(d, (int, float)) and not isinstance(d, bool)}

    news2 = None
    raw_news2 = alert.get("news2")
    # NEWS2 says nothing about a flat battery: technical alerts leave it out.
    if isinstance(raw_news2, Mapping) and "score" in raw_news2 and alert.get("category") != "technical":
        news2 = News2Facts(
            score=int(raw_news2["score"]), band=str(raw_news2.get("band", "")),
            parameters={str(k): int(v) for k, v in dict(raw_news2.get("parameters") or {}).items()},
            missing=tuple(str(m) for m in raw_news2.get("missing") or ()),
        )
    risk = next((m.value for m in values if m.name == "risk_pct"), None)
    anomaly = next((m.value for m in values if m.name == "anomaly_score"), None)
    secrets = [str(alert.get(k) or "") for k in ("patient_id", "alert_id", "device_id", "name", "birth_date")]
    scale = alert.get("spo2_scale")
    on_oxygen = alert.get("on_oxygen")
    return AlertFacts(
        kind=str(alert["kind"]),
        category="technical" if alert.get("category") == "technical" else "clinical",
        severity=str(alert["severity"]),  # type: ignore[arg-type]
        rule=_scrub(str(alert.get("rule") or ""), secrets),
        values=tuple(values),
        flags=flags,
        baselines=baselines,
        trends_per_hour=trends,
        news2=news2,
        risk_pct=None if risk is None else int(risk),
        anomaly_score=None if anomaly is None else float(anomaly),
        contributors=tuple(contributors),
        on_oxygen=on_oxygen if isinstance(on_oxygen, bool) else None,
        spo2_scale=int(scale) if scale in (1, 2) else None,
        language=language,  # type: ignore[arg-type]
        emergency_number=str(emergency_number),
    )
