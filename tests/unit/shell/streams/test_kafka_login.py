"""Every Kafka client's login comes from the settings: TLS that checks the brokers, SCRAM as the
service's own user, the password from a file; PLAINTEXT only when asked for, and loudly."""

from __future__ import annotations

import logging
import ssl

import pytest

from vigil.settings import SettingsError, VigilSettings
from vigil.shell.streams.kafka_login import faust_credentials, kafka_security


def test_a_service_logs_in_with_scram_over_tls_by_default():
    options = kafka_security(VigilSettings(kafka_username="vigil-gateway", kafka_password="pw"))
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "vigil-gateway", "pw")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_attack_no_login_is_refused_at_start_not_sent_anonymously():
    with pytest.raises(SettingsError, match="VIGIL_KAFKA_USERNAME") as refused:
        kafka_security(VigilSettings(kafka_username="vigil-gateway"))
    assert "pw" not in str(refused.value)


def test_the_password_comes_from_an_owner_only_file(tmp_path, monkeypatch):
    secret = tmp_path / "vigil-notifier"
    secret.write_text("from-the-file\n")
    secret.chmod(0o600)
    monkeypatch.setenv("VIGIL_KAFKA_USERNAME", "vigil-notifier")
    monkeypatch.setenv("VIGIL_KAFKA_PASSWORD_FILE", str(secret))
    settings = VigilSettings()
    assert kafka_security(settings)["sasl_plain_password"] == "from-the-file"
    assert "from-the-file" not in repr(settings)
    secret.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by group or others"):
        VigilSettings()


def test_the_brokers_ca_is_the_one_configured(tmp_path):
    """With VIGIL_KAFKA_CA_FILE the context trusts that CA (the local CA of deploy/local)."""
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
                    "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt")], check=True, capture_output=True)
    context = kafka_security(VigilSettings(kafka_username="u", kafka_password="p", kafka_ca_file=tmp_path / "ca.crt"))["ssl_context"]
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "Test CA"),),)]


def test_plaintext_is_only_taken_when_asked_for_and_is_logged_as_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="vigil.kafka"):
        options = kafka_security(VigilSettings(kafka_security_protocol="PLAINTEXT"))
    assert options == {"security_protocol": "PLAINTEXT"}
    assert "WITHOUT TLS OR LOGIN" in caplog.text
    assert faust_credentials(VigilSettings(kafka_security_protocol="PLAINTEXT")) is None


def test_attack_an_unknown_protocol_is_refused():
    with pytest.raises(ValueError):
        VigilSettings(kafka_security_protocol="SASL_PLAINTEXT")  # a login in clear text: not offered


def test_faust_gets_the_same_login():
    credentials = faust_credentials(VigilSettings(kafka_username="vigil-processor", kafka_password="pw"))
    assert (credentials.username, credentials.password, credentials.mechanism.value, credentials.protocol.value) == (
        "vigil-processor", "pw", "SCRAM-SHA-512", "SASL_SSL")
