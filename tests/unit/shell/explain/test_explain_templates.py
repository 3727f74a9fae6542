"""Template texts: every kind, English and Chinese, pass every check; fast; the pipeline's
original entry points keep working."""

from __future__ import annotations

import re

import pytest

from vigil.shell.explain.checks import check_text, reading_grade
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.samples import KINDS, sample_alert
from vigil.shell.explain.templates import (
    PATIENT_TEXT,
    PATIENT_TEXT_ZH,
    clinician_summary,
    clinician_text,
    patient_message,
    patient_text,
)


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("kind", sorted(PATIENT_TEXT))
def test_every_kind_passes_every_check(kind, language):
    facts = facts_from_alert(sample_alert(kind, baselines={"hr": 72, "spo2": 96}, trends={"hr": 12.0}),
                             language=language, emergency_number="112")
    patient, clinician = patient_text(facts), clinician_text(facts)
    assert check_text(patient, facts, "patient") == []
    assert check_text(clinician, facts, "clinician") == []
    assert reading_grade(patient, language) <= 8
    # Calm and plain: the opening for the kind is there, in the right language.
    assert (PATIENT_TEXT if language == "en" else PATIENT_TEXT_ZH)[kind] in patient


@pytest.mark.parametrize("language", ["en", "zh"])
def test_clinical_alerts_carry_the_emergency_line_and_the_care_team_line(language):
    for kind in KINDS:
        facts = facts_from_alert(sample_alert(kind), language=language, emergency_number="112")
        text = patient_text(facts)
        if facts.category == "clinical":
            assert re.search(r"(?<!\d)112(?!\d)", text), kind
            assert ("does not replace" in text) if language == "en" else ("不能取代" in text)
        else:
            # Device trouble: practical, no emergency scare, no emergency number.
            assert "112" not in text and "emergency" not in text.lower() and "chest pain" not in text
            assert ("care team" in text) if language == "en" else ("护理团队" in text)


def test_patient_text_quotes_the_reading_and_says_what_to_do():
    text = patient_text(facts_from_alert(sample_alert("hypoxaemia")))
    assert "84%" in text and "Please sit upright and rest." in text and "call 999 now" in text
    assert "will contact you very soon" in text  # critical
    zh = patient_text(facts_from_alert(sample_alert("fever"), language="zh"))
    assert "38.8°C" in zh and "请休息" in zh and "拨打999" in zh
    model = patient_text(facts_from_alert(sample_alert("rising_risk")))
    assert "Your oxygen level was 84%. It is usually about 96%." in model
    offline = patient_text(facts_from_alert(sample_alert("device_offline")))
    assert "12 minutes ago" in offline and "charged and worn" in offline


def test_clinician_text_has_values_baselines_trend_news2_and_model_view():
    facts = facts_from_alert(sample_alert("rising_risk", baselines={"hr": 72}, trends={"hr": 12.0, "spo2": -1.5},
                                          on_oxygen=False, spo2_scale=1))
    text = clinician_text(facts)
    for part in ("HIGH rising_risk", "Rule: deterioration risk >= 50%", "NEWS2 3 (low-medium): RR 0, SpO2 3",
                 "not observed: SBP, ACVPU", "Model: risk 87%", "Drivers: SpO2 84 vs 96 (z -7.1), RR 22 vs 16 (z +4.1)",
                 "Trends: HR +12.0/h, SpO2 -1.5/h", "On air, SpO2 scale 1"):
        assert part in text, part
    bp = clinician_text(facts_from_alert(sample_alert("tachycardia", baselines={"hr": 72}, trends={"hr": 12.0})))
    assert "HR 143 bpm (baseline 72, trend +12.0/h)" in bp and "irregular rhythm" in bp
    zh = clinician_text(facts_from_alert(sample_alert("news2"), language="zh"))
    assert zh.startswith("【高 NEWS2升高】") and "NEWS2 6（中）" in zh and "规则：NEWS2总分 >= 5" in zh


def test_templates_are_deterministic():
    a = facts_from_alert(sample_alert("anomaly"), language="zh")
    assert patient_text(a) == patient_text(a) and clinician_text(a) == clinician_text(a)


def test_legacy_entry_points_keep_their_signatures():
    alert = sample_alert("rising_risk")
    assert patient_message(alert) == patient_text(facts_from_alert(alert))
    summary = clinician_summary(alert)
    assert "Drivers:" in summary and "Model vigil-models-1+bb235a6e91." in summary
    with_baseline = clinician_summary(sample_alert("bradycardia"), {"hr_bpm": 58.2})
    assert "HR 33 bpm (baseline 58)" in with_baseline



@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_number_a_patient_reads_carries_its_unit(language):
    """Not "It was 190. It is usually about 125": each number is followed by its unit (the
    emergency number aside)."""
    import re

    from vigil.shell.explain.samples import sample_alerts as _all
    from vigil.shell.explain.templates import patient_text as _patient_text

    units = r"(?:%|°C| ?mmHg| beats a minute| breaths a minute| minutes|次/分|分钟)"
    for alert in [*_all(), sample_alert("rising_risk", contributors=[
            {"vital": "sbp", "value": 190.0, "baseline": 125.0, "z": 4.0}])]:
        text = _patient_text(facts_from_alert(alert, language=language))
        text = text.replace("999", "")
        for m in re.finditer(r"\d+(?:\.\d+)?", text):
            rest = text[m.end():]
            assert re.match(units, rest) or re.match(r" over \d+ mmHg|/\d+ mmHg", rest), (alert["kind"], text)
