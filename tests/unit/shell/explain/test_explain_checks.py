"""Each check catches its violation and passes good text."""

from __future__ import annotations

import pytest

from vigil.shell.explain.checks import check_text, quantities, reading_grade, unsupported_numbers
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.samples import sample_alert

GOOD_EN = ("Your temperature has been higher than usual. It was 38.8°C. Please rest and drink fluids. "
           "If you feel very unwell, call 999 now. Vigil helps your care team. It does not replace them.")
GOOD_ZH = "您的体温比平时高，为38.8°C。请休息，多喝水。如果您感到非常不适，请立即拨打999。"


@pytest.fixture
def fever():
    return facts_from_alert(sample_alert("fever", trends={"temp": 0.4}))


@pytest.fixture
def fever_zh():
    return facts_from_alert(sample_alert("fever"), language="zh")


@pytest.fixture
def critical():
    return facts_from_alert(sample_alert("hypoxaemia"))


def test_good_text_passes(fever, fever_zh):
    assert check_text(GOOD_EN, fever, "patient") == []
    assert check_text(GOOD_ZH, fever_zh, "patient") == []
    assert check_text("MEDIUM fever: Temp 38.8 °C (trend +0.4/h). NEWS2 3. Consider infection screen?", fever, "clinician") == []


@pytest.mark.parametrize("text", [
    "Your temperature was 39.4°C.",       # a number not in the facts
    "Please rest for 20 minutes.",          # a time the facts never gave
    "Rest for twenty minutes.",             # the same, in words
    "Your reading was 38.8°C, up from 37.2°C.",
])
def test_invented_numbers_are_caught(text, fever):
    assert "unsupported_number" in check_text(text, fever, "clinician")


def test_number_normalisation_and_names_with_digits(fever):
    assert unsupported_numbers("Temp 38.80 °C, SpO2 and NEWS2 noted, trend -0.4", fever) == []
    assert quantities("SpO2 NEWS2 O2") == []
    assert unsupported_numbers("请休息十分钟。", fever) == [10.0]
    assert unsupported_numbers("十分重要。", fever) == []  # 十分 is "very", not ten
    assert unsupported_numbers("No one else.", fever) == []


@pytest.mark.parametrize("text", [
    "You have sepsis.", "This is a heart attack.", "You are having a stroke.", "This is not sepsis.",
    "The cause is pneumonia.", "Findings in keeping with heart failure.",
])
def test_certain_diagnoses_are_caught(text, fever):
    assert "certain_diagnosis" in check_text(text, fever, "clinician")


@pytest.mark.parametrize("text", ["您得了败血症。", "这是心脏病发作。"])
def test_certain_diagnoses_are_caught_in_chinese(text, fever_zh):
    assert "certain_diagnosis" in check_text(text, fever_zh, "clinician")


@pytest.mark.parametrize("text", [
    "This may be an early sign of infection.", "Consider sepsis screen.", "Could this be pneumonia?",
])
def test_hedged_diagnoses_pass(text, fever):
    assert "certain_diagnosis" not in check_text(text, fever, "clinician")


def test_hedged_diagnosis_passes_in_chinese(fever_zh):
    assert "certain_diagnosis" not in check_text("体温升高，可能与感染有关，请评估。", fever_zh, "clinician")


@pytest.mark.parametrize("text", [
    "Take paracetamol now.", "Take two tablets.", "Ibuprofen may help.", "Give aspirin 300 mg.",
    "Use your inhaler, two puffs.", "Increase your oxygen.", "Consider antipyretics.",
])
def test_medication_and_dose_advice_is_caught(text, fever):
    assert "medication" in check_text(text, fever, "clinician")


@pytest.mark.parametrize("text", ["请服用布洛芬。", "请吃两片退烧药。", "每次500毫克。"])
def test_medication_is_caught_in_chinese(text, fever_zh):
    assert "medication" in check_text(text, fever_zh, "clinician")


def test_high_and_critical_patient_text_needs_the_emergency_number(critical, fever):
    no_line = "Your oxygen level has been lower than usual. It was 84%. Please sit upright and rest."
    assert "emergency_line" in check_text(no_line, critical, "patient")
    assert "emergency_line" not in check_text(no_line + " Call 999 now if you feel very unwell.", critical, "patient")
    assert "emergency_line" not in check_text("Your temperature was 38.8°C. Please rest.", fever, "patient")  # medium
    # The clinician's text is not held to the patient's emergency line.
    assert "emergency_line" not in check_text("CRITICAL hypoxaemia: SpO2 84 %.", critical, "clinician")
    # 9999 is not 999.
    assert "emergency_line" in check_text(no_line + " Call 9999.", critical, "patient")


def test_length_limits(fever):
    assert "length" in check_text("Please rest. " * 60, fever, "patient")
    assert "length" not in check_text("Please rest. " * 20, fever, "patient")
    assert check_text("", fever, "patient") == ["empty"]


def test_reading_grade(fever):
    hard = ("Physiological measurements demonstrate considerable deterioration, necessitating immediate "
            "multidisciplinary consultation regarding cardiorespiratory parameters. Telephone 999 immediately.")
    assert reading_grade(hard, "en") > 8
    assert "reading_grade" in check_text(hard, fever, "patient")
    assert "reading_grade" not in check_text(hard, fever, "clinician")  # clinicians read shorthand
    assert reading_grade(GOOD_EN, "en") <= 6


def test_chinese_reading_proxy_keeps_sentences_short(fever_zh):
    long_sentence = "鉴于您目前多项生理监测指标呈现出显著且持续的异常波动趋势并且已经明显偏离您个人既往的基线水平因此建议您立即休息。"
    assert reading_grade(long_sentence, "zh") > 8
    assert "reading_grade" in check_text(long_sentence, fever_zh, "patient")
    assert reading_grade(GOOD_ZH, "zh") <= 8


def test_wrong_language_is_refused(fever, fever_zh):
    assert "language" in check_text(GOOD_ZH, fever, "patient")
    assert "language" in check_text(GOOD_EN, fever_zh, "patient")
    assert "language" in check_text(GOOD_EN, fever_zh, "clinician")
