"""A paho MQTT client for a broker URL: one place for credentials, TLS and the default ports."""

from __future__ import annotations

from urllib.parse import urlparse

import paho.mqtt.client as mqtt


def mqtt_client(url: str, client_id: str, *, username: str | None = None, password: str | None = None,
                ca_file: str | None = None, **options: object) -> tuple[mqtt.Client, str, int]:
    """A paho client for `url` (mqtt:// or mqtts://), with the host and port to connect to.

    Credentials come from the arguments, else from the URL; over mqtts the broker is verified
    against `ca_file` (default: the system's CAs), its name included."""
    parsed = urlparse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **options)
    user = username or parsed.username
    if user:
        client.username_pw_set(user, password or parsed.password)
    if parsed.scheme == "mqtts":
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    return client, parsed.hostname or "127.0.0.1", parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
