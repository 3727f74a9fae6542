"""Secrets in settings (issue 15, "Secrets"): each may come from VIGIL_<NAME>_FILE (stripped, an
owner-only file), none is shown by a settings object's repr, and an endpoint that would carry a
secret over plain HTTP off this machine is refused at start-up."""

from __future__ import annotations

import logging
import os

import pytest

from vigil.settings import SettingsError, VigilSettings, is_secret, refuse_plain_http
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.notify.channels.registry import ChannelSettings

# Every secret setting, by the settings class that reads it.
SECRETS = {
    VigilSettings: ("database_url", "mqtt_password", "influx_token", "oidc_client_secret", "api_token", "kafka_password",
                    "vapid_private_key"),
    ChannelSettings: ("twilio_auth_token", "smtp_password", "webhook_secret"),
    LlmConfig: ("api_key",),
}
PREFIX = {VigilSettings: "VIGIL_", ChannelSettings: "VIGIL_", LlmConfig: "VIGIL_LLM_"}
CASES = [(cls, name) for cls, names in SECRETS.items() for name in names]


def plain(value: object) -> object:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def owner_only(path, text: str):
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_the_secret_fields_are_exactly_those_listed():
    for cls, names in SECRETS.items():
        assert {n for n, f in cls.model_fields.items() if is_secret(f)} == set(names), cls.__name__


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_each_secret_comes_from_its_file_stripped(cls, name, tmp_path, monkeypatch):
    marker = f"secret-{name}-Qx81"
    monkeypatch.setenv(f"{PREFIX[cls]}{name.upper()}_FILE", str(owner_only(tmp_path / name, f"  {marker}\n\n")))
    settings = cls()
    assert plain(getattr(settings, name)) == marker
    assert marker not in repr(settings) and marker not in str(settings)


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_no_secret_shows_in_a_repr_when_given_directly(cls, name, monkeypatch):
    marker = f"direct-{name}-Zk27"
    monkeypatch.setenv(f"{PREFIX[cls]}{name.upper()}", marker)
    settings = cls()
    assert plain(getattr(settings, name)) == marker
    assert marker not in repr(settings)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_secret_file_readable_by_group_or_others_is_refused(mode, tmp_path, monkeypatch):
    path = tmp_path / "key"
    path.write_text("sk-loose-file-Pq44")
    os.chmod(path, mode)
    monkeypatch.setenv("VIGIL_LLM_API_KEY_FILE", str(path))
    with pytest.raises(SettingsError) as refused:
        LlmConfig()
    message = str(refused.value)
    assert "VIGIL_LLM_API_KEY_FILE" in message and "chmod 600" in message and f"{mode:o}" in message
    assert "sk-loose-file-Pq44" not in message


def test_a_missing_or_empty_secret_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_SMTP_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="VIGIL_SMTP_PASSWORD_FILE: cannot read"):
        ChannelSettings()
    monkeypatch.setenv("VIGIL_SMTP_PASSWORD_FILE", str(owner_only(tmp_path / "empty", " \n")))
    with pytest.raises(SettingsError, match="is empty"):
        ChannelSettings()


def test_a_secret_given_both_ways_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_API_TOKEN", "one")
    monkeypatch.setenv("VIGIL_API_TOKEN_FILE", str(owner_only(tmp_path / "t", "two")))
    with pytest.raises(SettingsError, match="set VIGIL_API_TOKEN or VIGIL_API_TOKEN_FILE, not both"):
        VigilSettings()


def test_an_argument_wins_over_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_API_TOKEN_FILE", str(owner_only(tmp_path / "t", "from-file")))
    assert VigilSettings(api_token="from-argument").api_token.get_secret_value() == "from-argument"


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://127.0.0.1:8000/v1", "http://127.9.9.9/v1",
                                 "http://[::1]:11434/v1", "http://localhost:11434/v1", None, ""])
def test_https_or_loopback_is_allowed(url):
    refuse_plain_http(url, "VIGIL_LLM_BASE_URL", allow=False)


@pytest.mark.parametrize("url", ["http://llm.example.org/v1", "http://10.0.0.5:8000/v1", "http://[2001:db8::1]/v1",
                                 "http://localhost.example.org/v1", "ftp://127.0.0.1/v1", "llm.example.org/v1"])
def test_plain_http_off_this_machine_is_refused(url):
    with pytest.raises(SettingsError, match="VIGIL_LLM_BASE_URL") as refused:
        refuse_plain_http(url, "VIGIL_LLM_BASE_URL", allow=False)
    assert "https" in str(refused.value)


def test_the_development_switch_lets_plain_http_through_loudly(caplog, monkeypatch):
    monkeypatch.setenv("VIGIL_ALLOW_PLAIN_HTTP", "true")
    monkeypatch.setenv("VIGIL_LLM_BASE_URL", "http://gpu-box.lan:8000/v1")
    with caplog.at_level(logging.WARNING, logger="vigil.settings"):
        LlmConfig().check_transport()
    (record,) = [r for r in caplog.records if "PLAIN HTTP ALLOWED" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.host == "gpu-box.lan"  # type: ignore[attr-defined]


def test_audit_retention_is_forever_or_at_least_a_year():
    assert VigilSettings(retain_audit_days=0).retain_audit_days == 0
    assert VigilSettings(retain_audit_days=365).retain_audit_days == 365
    with pytest.raises(ValueError, match="VIGIL_RETAIN_AUDIT_DAYS"):
        VigilSettings(retain_audit_days=30)


def test_the_dead_letter_retention_has_its_new_name_and_keeps_the_old(monkeypatch):
    monkeypatch.setenv("VIGIL_DEADLETTER_RETENTION_DAYS", "9")
    assert VigilSettings().retention_days()["dead_letters"] == 9
    monkeypatch.setenv("VIGIL_RETAIN_DEAD_LETTERS_DAYS", "5")
    assert VigilSettings().retention_days()["dead_letters"] == 5
