"""Attacks on Vigil's secrets (issue 15, "Secrets"): a configuration that would send the LLM key,
the Twilio token or a signed webhook's patient data over plain HTTP to another machine is refused
at start-up, by the embedded runtime and by `vigil run` (whose error shows no secret); the same
over loopback or https is allowed and works; a secret file others can read is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from standins.openai_api import OpenAIStandIn

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import SettingsError, VigilSettings
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.facts import facts_from_alert
from vigil.shell.explain.llm import LlmBackend, LlmConfig
from vigil.shell.explain.samples import sample_alert
from vigil.shell.notify.channels.registry import ChannelSettings, build_channels
from vigil.shell.registry import Registry

KEY = "sk-attack-key-Hv93"
OFF_MACHINE = ["http://llm.example.org/v1", "http://10.20.30.40:8000/v1", "http://[2001:db8::7]/v1",
               "http://127.0.0.1.nip.io/v1"]


@pytest.mark.parametrize("url", OFF_MACHINE)
def test_an_llm_key_over_plain_http_off_this_machine_is_refused(url, record_attack):
    try:
        LlmBackend(LlmConfig(base_url=url, api_key=KEY))
        refused, message = False, ""
    except SettingsError as exc:
        refused, message = True, str(exc)
    record_attack("secrets", f"LLM key over plain HTTP to {url}", "embedded", refused)
    assert refused and "VIGIL_LLM_BASE_URL" in message and KEY not in message


async def test_the_embedded_runtime_refuses_to_start_with_a_plain_http_llm(tmp_path, monkeypatch, record_attack):
    monkeypatch.setenv("VIGIL_LLM_BASE_URL", "http://llm.example.org/v1")
    monkeypatch.setenv("VIGIL_LLM_API_KEY", KEY)
    with pytest.raises(SettingsError, match="VIGIL_LLM_BASE_URL") as refused:
        EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False), Registry())
    record_attack("secrets", "embedded runtime with a plain-HTTP LLM URL", "embedded", True)
    assert KEY not in str(refused.value)


async def test_a_loopback_llm_over_plain_http_is_allowed_and_gets_the_key(record_attack):
    with OpenAIStandIn(api_key=KEY) as server:  # the stand-in answers only with the right key
        explainer = Explainer(LlmConfig(base_url=server.base_url, api_key=KEY, model="standin-gpt", timeout_s=2.0))
        try:
            result = await explainer.explain(facts_from_alert(sample_alert("hypoxaemia"), language="en"))
        finally:
            await explainer.aclose()
        assert result.source == "llm" and len(server.chat_requests()) == 1
    record_attack("secrets", "LLM on loopback over plain HTTP (allowed, works)", "embedded", True)


def test_the_development_switch_allows_plain_http_but_only_when_set(monkeypatch):
    monkeypatch.setenv("VIGIL_ALLOW_PLAIN_HTTP", "true")
    LlmBackend(LlmConfig(base_url="http://gpu-box.lan:8000/v1", api_key=KEY))  # allowed, logged (unit test)


def test_a_twilio_token_over_plain_http_off_this_machine_is_refused(record_attack):
    settings = ChannelSettings(twilio_account_sid="AC" + "a" * 32, twilio_auth_token="tw-token-Lm55",
                               twilio_from="+15005550006", twilio_api_base="http://twilio.example.org")
    with pytest.raises(SettingsError, match="VIGIL_TWILIO_API_BASE") as refused:
        build_channels(settings)
    record_attack("secrets", "Twilio token over plain HTTP off this machine", "embedded", True)
    assert "tw-token-Lm55" not in str(refused.value)
    settings.twilio_api_base = "http://127.0.0.1:9"  # the stand-in's: allowed
    assert "sms" in build_channels(settings)


def test_a_ward_webhook_over_plain_http_off_this_machine_is_refused(tmp_path, record_attack):
    with pytest.raises(SettingsError, match="VIGIL_WARD_WEBHOOK_URL"):
        EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False,
                                      ward_webhook_url="http://ehr.example.org/hook"), Registry())
    record_attack("secrets", "signed ward webhook (patient data) over plain HTTP off this machine", "embedded", True)
    VigilSettings(ward_webhook_url="https://ehr.example.org/hook").check_transport()
    VigilSettings(ward_webhook_url="http://127.0.0.1:9/hook").check_transport()


def vigil_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.cli", "run"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_vigil_run_refuses_a_plain_http_llm_and_its_error_shows_no_secret(tmp_path, record_attack):
    env = dict(os.environ, VIGIL_DATA_DIR=str(tmp_path), VIGIL_MODELS_ENABLED="false", VIGIL_HTTP_PORT="0",
               VIGIL_LLM_BASE_URL="http://llm.example.org/v1", VIGIL_LLM_API_KEY=KEY,
               VIGIL_API_TOKEN="api-token-Rr12", VIGIL_SMTP_PASSWORD="smtp-pw-Ww34")
    done = vigil_run(env)
    refused = done.returncode == 2 and "VIGIL_LLM_BASE_URL" in done.stderr
    record_attack("secrets", "`vigil run` with a plain-HTTP LLM URL", "embedded", refused)
    assert refused, done.stderr
    assert "Traceback" not in done.stderr
    for secret in (KEY, "api-token-Rr12", "smtp-pw-Ww34"):
        assert secret not in done.stderr + done.stdout


def test_vigil_run_refuses_a_secret_file_others_can_read(tmp_path, record_attack):
    key_file = tmp_path / "llm-key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o644)
    env = dict(os.environ, VIGIL_DATA_DIR=str(tmp_path / "data"), VIGIL_LLM_API_KEY_FILE=str(key_file),
               VIGIL_LLM_BASE_URL="https://llm.example.org/v1")
    done = vigil_run(env)
    refused = done.returncode == 2 and "VIGIL_LLM_API_KEY_FILE" in done.stderr and "chmod 600" in done.stderr
    record_attack("secrets", "a secret file readable by group or others", "embedded", refused)
    assert refused, done.stderr
    assert KEY not in done.stderr + done.stdout


def test_a_bad_setting_beside_secrets_shows_none_of_them(tmp_path):
    env = dict(os.environ, VIGIL_DATA_DIR=str(tmp_path), VIGIL_HTTP_PORT="not-a-port",
               VIGIL_API_TOKEN="api-token-Rr12", VIGIL_MQTT_PASSWORD="mqtt-pw-Tt56",
               VIGIL_OIDC_CLIENT_SECRET="oidc-secret-Yy78", VIGIL_DATABASE_URL="postgresql://u:db-pw-Uu90@h/db")
    done = vigil_run(env)
    assert done.returncode == 2 and "http_port" in done.stderr and "Traceback" not in done.stderr
    for secret in ("api-token-Rr12", "mqtt-pw-Tt56", "oidc-secret-Yy78", "db-pw-Uu90"):
        assert secret not in done.stderr + done.stdout
