"""The explainer against a local OpenAI-compatible stand-in: good answers are used, every
broken, slow or failed answer falls back to the template with its reason, and nothing that
identifies a patient is ever sent."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from standins.openai_api import INVENTED, UNSAFE, OpenAIStandIn

from vigil.shell.explain.checks import check_text
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.llm import BadOutput, LlmConfig, parse_texts
from vigil.shell.explain.samples import KINDS, sample_alert
from vigil.shell.explain.templates import clinician_text, patient_frame, patient_text

KEY = "sk-standin-test"

# mode -> (fallback reason, a failed check it must list); the reason is the first failed check.
EXPECTED = {
    "good": (None, None), "fenced": (None, None),
    "invented_number": ("check:unsupported_number", "patient:unsupported_number"),
    "dose": ("check:instruction", "patient:medication"),
    "diagnosis": ("check:diagnosis", "patient:diagnosis"),
    "negation_of_care": ("check:contact", "patient:dismissal"),
    "false_reassurance": ("check:reassurance", "patient:reassurance"),
    "remove_monitor": ("check:dismissal", "patient:dismissal"),
    "lay_diagnosis": ("check:diagnosis", "patient:diagnosis"),
    "outside_care_plan": ("check:dismissal", "patient:instruction"),
    "phishing_link": ("check:contact", "patient:contact"),
    "spelt_number": ("check:unsupported_number", "patient:unsupported_number"),
    "emergency_in_part": ("check:contact", "patient:instruction"),
    "clinician_dismissal": ("check:dismissal", "clinician:dismissal"),
    "severity_contradiction": ("check:dismissal", "clinician:reassurance"),
    "too_long": ("check:form", "patient:form"), "too_hard": ("check:reading_grade", "patient:reading_grade"),
    "wrong_language": ("check:language", "patient:language"),
    "legacy_shape": ("bad_output", None), "malformed": ("bad_output", None), "missing_field": ("bad_output", None),
    "error_500": ("error:InternalServerError", None), "error_429": ("error:RateLimitError", None),
}


@pytest.fixture
def llm():
    with OpenAIStandIn(api_key=KEY, slow_s=10.0) as server:
        yield server


def config(server: OpenAIStandIn, timeout_s: float = 2.0) -> LlmConfig:
    return LlmConfig(base_url=server.base_url, api_key=KEY, model="standin-gpt", timeout_s=timeout_s)


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("mode", sorted(EXPECTED))
async def test_each_mode_gives_the_right_outcome(llm, mode, language):
    llm.mode = mode
    facts = facts_from_alert(sample_alert("hypoxaemia"), language=language)  # critical: needs the emergency line
    assert INVENTED not in facts.supported_numbers
    explainer = Explainer(config(llm))
    try:
        result = await explainer.explain(facts)
    finally:
        await explainer.aclose()
    reason, failed_check = EXPECTED[mode]
    assert result.facts_key == facts.key() and result.language == language
    if reason is None:
        assert result.fallback_reason is None
        assert result.source == "llm" and result.failed_checks == []
        assert result.patient_text != patient_text(facts)  # the model's words, inside Vigil's frame
        assert result.patient_text.endswith(patient_frame(facts)) and result.model_patient_part in result.patient_text
        assert result.clinician_text.startswith(clinician_text(facts))
    else:
        assert result.source == "template"
        assert result.patient_text == patient_text(facts) and result.clinician_text == clinician_text(facts)
    if reason is not None and reason.startswith("check:"):
        assert failed_check in result.failed_checks, result.failed_checks
        assert result.rejected_patient_text  # kept for the record, never delivered
    elif reason is not None:
        assert result.fallback_reason == reason
    # Whatever the model did, what is delivered passes every check.
    assert check_text(result.patient_text, facts, "patient") == []
    assert check_text(result.clinician_text, facts, "clinician") == []
    assert len(llm.chat_requests()) == 1


async def test_slow_model_times_out_within_the_bound(llm):
    llm.mode = "slow"
    explainer = Explainer(config(llm, timeout_s=0.5))
    facts = facts_from_alert(sample_alert("bradypnoea"))
    started = time.perf_counter()
    result = await explainer.explain(facts)
    elapsed = time.perf_counter() - started
    await explainer.aclose()
    assert result.fallback_reason == "timeout" and result.source == "template"
    assert 0.5 <= elapsed < 0.5 + 0.5, elapsed
    assert "call 999 now" in result.patient_text


async def test_answers_are_cached_by_facts_but_timeouts_are_not(llm):
    explainer = Explainer(config(llm, timeout_s=0.5), cache_size=2)
    fever = facts_from_alert(sample_alert("fever"))
    first = await explainer.explain(fever)
    # Another patient, same picture: same facts, same key, no second call.
    second = await explainer.explain(facts_from_alert(sample_alert("fever", patient_id="pt-0002", alert_id="al-x")))
    assert first.source == second.source == "llm" and not first.cached and second.cached
    assert second.patient_text == first.patient_text
    assert explainer.stats.cache_hits == 1 and len(llm.chat_requests()) == 1

    llm.script("slow")
    brady = facts_from_alert(sample_alert("bradycardia"))
    assert (await explainer.explain(brady)).fallback_reason == "timeout"
    retry = await explainer.explain(brady)  # a transient failure is asked again
    assert retry.source == "llm" and not retry.cached
    assert len(llm.chat_requests()) == 3

    # Least recently used out: the cache holds 2, fever was used least recently.
    await explainer.explain(facts_from_alert(sample_alert("hypothermia")))
    assert not (await explainer.explain(fever)).cached
    await explainer.aclose()


async def test_rule_breaking_answers_are_cached_too(llm):
    llm.mode = "dose"
    explainer = Explainer(config(llm))
    facts = facts_from_alert(sample_alert("fever"))
    first = await explainer.explain(facts)
    assert first.source == "template" and "patient:medication" in first.failed_checks
    again = await explainer.explain(facts)
    assert again.cached and again.fallback_reason == first.fallback_reason and len(llm.chat_requests()) == 1
    await explainer.aclose()


async def test_the_request_is_chat_completions_with_the_facts_only(llm):
    explainer = Explainer(config(llm))
    alert = sample_alert("rising_risk", device_id="dev-00c9f2", name="Margaret Okonkwo", birth_date="1941-03-17")
    facts = facts_from_alert(alert)
    await explainer.explain(facts)
    await explainer.aclose()
    (request,) = llm.chat_requests()
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "standin-gpt" and body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert json.loads(body["messages"][1]["content"]) == json.loads(facts.as_json())
    raw = json.dumps(request, ensure_ascii=False)
    for value in ("pt-4817", "al-5a60bc2bf3ebde6e7b15", "dev-00c9f2", "Margaret", "Okonkwo", "1941", "1800001125",
                  "vigil-models-1"):
        assert value not in raw


async def test_llm_off_means_template_and_no_request(llm):
    for explainer in (Explainer(None), Explainer(LlmConfig())):
        result = await explainer.explain(facts_from_alert(sample_alert("fever")))
        assert result.source == "template" and result.fallback_reason is None
    assert llm.requests == []


async def test_a_server_that_is_not_there_is_an_error_not_an_exception():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        explainer = Explainer(LlmConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2.0))
        result = await explainer.explain(facts_from_alert(sample_alert("fever")))
        await explainer.aclose()
    assert result.source == "template" and result.fallback_reason == "error:APIConnectionError"


async def test_a_wrong_key_is_an_authentication_error(llm):
    explainer = Explainer(LlmConfig(base_url=llm.base_url, api_key="sk-wrong"))
    result = await explainer.explain(facts_from_alert(sample_alert("fever")))
    await explainer.aclose()
    assert result.fallback_reason == "error:AuthenticationError"


async def test_fallbacks_are_logged_with_structured_fields(llm, caplog):
    llm.mode = "diagnosis"
    explainer = Explainer(config(llm))
    with caplog.at_level(logging.WARNING, logger="vigil.explain"):
        await explainer.explain(facts_from_alert(sample_alert("tachycardia")))
    await explainer.aclose()
    (record,) = [r for r in caplog.records if r.name == "vigil.explain"]
    # "This is sepsis." is off topic (not about a reading) before it is a diagnosis
    assert record.reason == "check:off_topic" and record.kind == "tachycardia"
    assert record.failed_checks == "patient:off_topic,patient:diagnosis,patient:certain_diagnosis" and record.facts_key
    assert explainer.stats.fallbacks == {"check:off_topic": 1}


async def test_the_standin_lists_models_in_the_wire_format(llm):
    explainer = Explainer(config(llm))
    assert explainer.backend is not None
    models = await explainer.backend.client.models.list()
    assert [m.id for m in models.data] == ["standin-gpt"]
    await explainer.aclose()


def test_config_from_environment(monkeypatch):
    assert LlmConfig.from_env() is None
    monkeypatch.setenv("VIGIL_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("VIGIL_LLM_MODEL", "llama3.1")
    monkeypatch.setenv("VIGIL_LLM_API_KEY", "sk-env")
    monkeypatch.setenv("VIGIL_LLM_TIMEOUT_S", "2.5")
    config = LlmConfig.from_env()
    assert config is not None and config.enabled and config.model == "llama3.1" and config.timeout_s == 2.5
    assert config.api_key.get_secret_value() == "sk-env" and "sk-env" not in repr(config)
    assert LlmConfig().timeout_s == 2.5 and LlmConfig.model_fields["timeout_s"].default == 4.0


def test_parse_texts_tolerates_fences_and_prose():
    answer = {"what_changed": "Your heart rate was 143 bpm.", "clinician_summary": "HR 143 bpm."}
    expected = ("Your heart rate was 143 bpm.", "HR 143 bpm.")
    assert parse_texts(json.dumps(answer)) == expected
    assert parse_texts(f"Here you go:\n```json\n{json.dumps(answer)}\n```") == expected
    assert parse_texts(f"Sure. {json.dumps(answer)} Anything else?") == expected
    for bad in ("", "no json here", '{"what_changed": "only one"}', '{"what_changed": 1, "clinician_summary": 2}', "[1, 2]",
                # the old shape, the model writing the whole message: never read
                '{"patient": "Do not call 999.", "clinician": "Acknowledge and close."}'):
        with pytest.raises(BadOutput):
            parse_texts(bad)


async def test_a_failure_inside_the_checks_still_gives_the_template(llm, monkeypatch):
    import vigil.shell.explain.explainer as explainer_module

    def broken(*args, **kwargs):
        raise RuntimeError("bug in a check")

    monkeypatch.setattr(explainer_module, "candidate_failures", broken)
    explainer = Explainer(config(llm))
    facts = facts_from_alert(sample_alert("fever"))
    result = await explainer.explain(facts)
    await explainer.aclose()
    assert result.source == "template" and result.fallback_reason == "error:RuntimeError"
    assert result.patient_text == patient_text(facts)


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_no_unsafe_mode_is_delivered_for_any_kind(llm, language):
    """Every unsafe class of the stand-in, for every kind of alert: the template goes out, word for word."""
    explainer = Explainer(config(llm), cache_size=0)
    try:
        for kind in KINDS:
            facts = facts_from_alert(sample_alert(kind), language=language)
            for mode in [*UNSAFE, "too_long", "too_hard", "wrong_language", "legacy_shape"]:
                llm.script(mode)
                result = await explainer.explain(facts)
                assert result.source == "template", (kind, mode, result.patient_text, result.clinician_text)
                assert result.patient_text == patient_text(facts) and result.clinician_text == clinician_text(facts)
    finally:
        await explainer.aclose()


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_a_good_answer_is_delivered_for_every_kind_inside_the_frame(llm, language):
    explainer = Explainer(config(llm), cache_size=0)
    try:
        for kind in KINDS:
            facts = facts_from_alert(sample_alert(kind), language=language)
            result = await explainer.explain(facts)
            assert result.source == "llm", (kind, result.failed_checks)
            assert result.patient_text.endswith(patient_frame(facts)) and result.clinician_text.startswith(clinician_text(facts))
            assert check_text(result.patient_text, facts, "patient") == []
    finally:
        await explainer.aclose()
