"""The facts an explanation is built from: rounded for quoting, keyed for the cache, and free
of anything that identifies a patient, an alert or a device."""

from __future__ import annotations

import json

import pytest

from vigil.core.model_rules import MODEL_RULE_KINDS
from vigil.core.rules import RULE_KINDS
from vigil.shell.explain.facts import AlertFacts, facts_from_alert, numbers_in, round_to
from vigil.shell.explain.llm import LlmBackend, LlmConfig
from vigil.shell.explain.samples import KINDS, sample_alert, sample_alerts
from vigil.shell.explain.templates import PATIENT_TEXT


def test_samples_and_templates_cover_every_kind_the_core_raises():
    assert set(KINDS) == set(RULE_KINDS) | set(MODEL_RULE_KINDS) == set(PATIENT_TEXT)


def test_values_are_rounded_the_way_texts_quote_them():
    facts = facts_from_alert(sample_alert("tachycardia", values={"hr_bpm": 143.46, "hr_variability_bpm": 9.44,
                                                                 "activity_g": 0.0234, "irregular": True}))
    by_name = {m.name: m for m in facts.values}
    assert by_name["hr_bpm"].value == 143 and isinstance(by_name["hr_bpm"].value, int)
    assert by_name["hr_bpm"].unit == "bpm" and by_name["hr_bpm"].vital == "hr"
    assert by_name["hr_variability_bpm"].value == 9.4
    assert by_name["activity_g"].value == 0.02
    assert facts.flags == {"irregular": True}
    assert facts_from_alert(sample_alert("fever", values={"temp_c": 38.85})).values[0].value == 38.9
    # Half away from zero: a 14.5 % battery is quoted as 15 %, not banker's 14 %.
    assert facts_from_alert(sample_alert("low_battery")).values[0].value == 15
    assert round_to(-2.25, 1) == -2.3


def test_news2_model_risk_contributors_and_context_are_kept():
    facts = facts_from_alert(sample_alert("rising_risk", spo2_scale=2, on_oxygen=True))
    assert facts.risk_pct == 87
    assert facts.news2 is not None and facts.news2.score == 3 and facts.news2.parameters["spo2"] == 3
    assert facts.news2.missing == ("sbp", "consciousness")
    assert [c.vital for c in facts.contributors] == ["spo2", "rr", "hr"]
    assert facts.contributors[0].baseline == 96 and facts.contributors[0].z == -7.1
    # Without an explicit baselines block, the model's own baselines are used.
    assert facts.baselines == {"spo2": 96, "rr": 16, "hr": 72}
    assert facts.spo2_scale == 2 and facts.on_oxygen is True


def test_optional_baselines_and_trends_are_taken_and_rounded():
    alert = sample_alert("tachycardia", baselines={"hr": 71.6, "temp": 36.84, "bogus": 1.0}, trends={"hr": 12.04, "spo2": -0.96})
    facts = facts_from_alert(alert)
    assert facts.baselines == {"hr": 72, "temp": 36.8}
    assert facts.trends_per_hour == {"hr": 12.0, "spo2": -1.0}


def test_at_most_three_contributors_and_technical_alerts_drop_news2():
    alert = sample_alert("anomaly", contributors=sample_alert("anomaly")["contributors"] * 2)
    assert len(facts_from_alert(alert).contributors) == 3
    assert facts_from_alert(sample_alert("low_battery")).news2 is None


def test_key_is_stable_and_follows_the_facts():
    a, b = facts_from_alert(sample_alert("fever")), facts_from_alert(sample_alert("fever"))
    assert a.key() == b.key() and len(a.key()) == 32
    # Ids and times are not facts: another patient with the same picture shares the explanation.
    c = facts_from_alert(sample_alert("fever", patient_id="pt-9999", alert_id="al-other", raised_t=1.0))
    assert c.key() == a.key()
    assert facts_from_alert(sample_alert("fever", values={"temp_c": 39.2})).key() != a.key()
    assert facts_from_alert(sample_alert("fever"), language="zh").key() != a.key()
    assert facts_from_alert(sample_alert("fever"), emergency_number="112").key() != a.key()


def test_unknown_language_is_refused():
    with pytest.raises(ValueError):
        facts_from_alert(sample_alert("fever"), language="fr")


def test_numbers_in_skips_names_that_contain_digits():
    assert numbers_in("SpO2 87 %, NEWS2 5, O2 on; temp 37.80 °C") == [87.0, 5.0, 37.8]
    assert numbers_in("SpO2 87%，NEWS2评分5分") == [87.0, 5.0]
    assert numbers_in("１２０") == [120.0]  # full-width digits are digits


def test_supported_numbers_are_every_number_in_the_facts():
    facts = facts_from_alert(sample_alert("hypertensive_crisis", trends={"sbp": -3.5}), emergency_number="112")
    supported = facts.supported_numbers
    for n in (206, 121, 180, 120, 3.5, 112, 3, 0):
        assert float(n) in supported
    assert 999.0 not in supported and 150.0 not in supported


IDENTIFIERS = {
    "patient_id": "pt-4817", "alert_id": "al-5a60bc2bf3ebde6e7b15", "device_id": "dev-00c9f2",
    "name": "Margaret Okonkwo", "birth_date": "1941-03-17", "nhs_number": "943 476 5919",
    "model_version": "vigil-models-1+bb235a6e91",
}


@pytest.mark.parametrize("kind", KINDS)
def test_no_identifier_reaches_the_facts_or_the_prompt(kind):
    alert = sample_alert(kind, **IDENTIFIERS, address="12 Elm Road", phone="+447700900123")
    alert["values"] = {**alert["values"], "device_id": IDENTIFIERS["device_id"], "patient_name": IDENTIFIERS["name"]}
    # An id that found its way into the rule text is redacted too.
    alert["rule"] += f" (seen on {IDENTIFIERS['device_id']})"
    facts = facts_from_alert(alert)
    backend = LlmBackend(LlmConfig(base_url="http://127.0.0.1:9/v1"))
    prompt = json.dumps(backend.messages(facts), ensure_ascii=False)
    for text in (facts.as_json(), prompt):
        for value in (*IDENTIFIERS.values(), "12 Elm Road", "+447700900123", "1941", "4817", "1800001125", "1800000825"):
            assert value not in text, f"{value!r} leaked"
    dumped = facts.model_dump()
    assert not {"patient_id", "alert_id", "device_id", "name", "birth_date", "onset_t", "raised_t"} & set(dumped)


def test_facts_are_frozen():
    facts = facts_from_alert(sample_alert("fever"))
    with pytest.raises(Exception):
        facts.kind = "other"  # type: ignore[misc]
    assert isinstance(facts, AlertFacts)


def test_every_sample_alert_gives_facts():
    for alert in sample_alerts():
        facts = facts_from_alert(alert)
        assert facts.kind == alert["kind"] and facts.rule == alert["rule"]
