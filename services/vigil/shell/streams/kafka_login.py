"""How a Vigil process logs in to Kafka: the one place a Kafka client's security options are made.

Every Kafka client Vigil starts (the gateway's producer, the processor's Faust app, the notifier's
consumer, the topic admin, the bench's and the tests' helpers) takes its options from here, so
none can forget TLS or the login. In the scaled path each service has its own SCRAM user and the
brokers' ACLs grant it only its own topics and consumer group (docs/security.md, "Kafka"): a
gateway that is taken over can write readings, never read alerts.

PLAINTEXT (no TLS, no login) is kept for a developer's own throw-away broker only: every client
made with it logs a WARNING, so it cannot go unnoticed.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from vigil.settings import SettingsError, VigilSettings, secret_value

log = logging.getLogger("vigil.kafka")


def kafka_tls_context(settings: VigilSettings) -> ssl.SSLContext:
    """TLS that checks the brokers' certificate and host name against VIGIL_KAFKA_CA_FILE (or the
    system's CAs): a broker with a certificate from another CA is refused."""
    context = ssl.create_default_context(cafile=str(settings.kafka_ca_file) if settings.kafka_ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def kafka_security(settings: VigilSettings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka producer, consumer or admin client. The password is
    handed over here and nowhere else; a missing login is refused by name, never guessed."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        log.warning("KAFKA WITHOUT TLS OR LOGIN: VIGIL_KAFKA_SECURITY_PROTOCOL=PLAINTEXT sends patient data "
                    "unencrypted to a broker that lets anyone read and write (development only)",
                    extra={"kafka": settings.kafka_bootstrap})
        return {"security_protocol": "PLAINTEXT"}
    if not settings.kafka_username or settings.kafka_password is None:
        raise SettingsError("Kafka over SASL_SSL needs this service's login: set VIGIL_KAFKA_USERNAME and "
                            "VIGIL_KAFKA_PASSWORD (or VIGIL_KAFKA_PASSWORD_FILE)")
    return {"security_protocol": "SASL_SSL", "ssl_context": kafka_tls_context(settings),
            "sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_username,
            "sasl_plain_password": secret_value(settings.kafka_password)}


def faust_credentials(settings: VigilSettings) -> Any:
    """The same login for Faust (`broker_credentials`): its consumer, producer and topic admin."""
    import faust

    options = kafka_security(settings)
    if options["security_protocol"] == "PLAINTEXT":
        return None
    return faust.SASLCredentials(username=options["sasl_plain_username"], password=options["sasl_plain_password"],
                                 ssl_context=options["ssl_context"], mechanism=options["sasl_mechanism"])
