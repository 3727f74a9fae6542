"""Each service process gets its own store credentials and nobody else's (tools/service_credentials.py)."""

import pytest

from vigil.tools.service_credentials import MissingCredentials, service_env

DEPLOY = {  # what deploy/local/up writes (the owner's, then each service's files)
    "VIGIL_DATABASE_URL": "postgresql+psycopg://vigil:vigil@db/vigil", "VIGIL_INFLUX_TOKEN": "operator",
    "VIGIL_PROCESSOR_DATABASE_URL_FILE": "/c/processor.database-url",
    "VIGIL_NOTIFIER_DATABASE_URL_FILE": "/c/notifier.database-url",
    "VIGIL_GRAFANA_DATABASE_URL_FILE": "/c/grafana.database-url",
    "VIGIL_PROCESSOR_INFLUX_TOKEN_FILE": "/c/processor.influx-token",
    "VIGIL_TRENDS_INFLUX_TOKEN_FILE": "/c/trends.influx-token",
    "VIGIL_GRAFANA_INFLUX_TOKEN_FILE": "/c/grafana.influx-token",
    "VIGIL_KAFKA_BOOTSTRAP": "k:9092", "PATH": "/usr/bin",
}


def credentials(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if "DATABASE_URL" in k or "INFLUX_TOKEN" in k}


def test_the_processor_gets_its_own_database_login_and_write_token_and_nothing_else():
    env = service_env(DEPLOY, "processor")
    assert credentials(env) == {"VIGIL_DATABASE_URL_FILE": "/c/processor.database-url",
                                "VIGIL_INFLUX_TOKEN_FILE": "/c/processor.influx-token"}
    assert env["VIGIL_KAFKA_BOOTSTRAP"] == "k:9092" and env["PATH"] == "/usr/bin"  # the rest passes through


def test_the_notifier_gets_no_influx_token_and_the_gateway_no_credentials_at_all():
    assert credentials(service_env(DEPLOY, "notifier")) == {"VIGIL_DATABASE_URL_FILE": "/c/notifier.database-url"}
    assert credentials(service_env(DEPLOY, "gateway")) == {}


def test_a_value_given_directly_wins_over_the_file_and_is_the_only_one_passed():
    env = service_env({**DEPLOY, "VIGIL_NOTIFIER_DATABASE_URL": "postgresql+psycopg://n@db/vigil?options=x"}, "notifier")
    assert credentials(env) == {"VIGIL_DATABASE_URL": "postgresql+psycopg://n@db/vigil?options=x"}


def test_a_service_without_its_own_credentials_is_refused_rather_than_falling_back():
    old_install = {k: v for k, v in DEPLOY.items() if not k.startswith("VIGIL_PROCESSOR_")}
    with pytest.raises(MissingCredentials, match="VIGIL_PROCESSOR_DATABASE_URL_FILE, VIGIL_PROCESSOR_INFLUX_TOKEN_FILE"):
        service_env(old_install, "processor")
    # No database configured at all (the embedded defaults): nothing to fall back from.
    assert credentials(service_env({"VIGIL_KAFKA_BOOTSTRAP": "k:9092"}, "processor")) == {}
