"""The embedded MQTT broker (amqtt), in this process's event loop, on loopback."""

from __future__ import annotations

from amqtt.broker import Broker


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def start_broker(host: str = "127.0.0.1", port: int = 1883) -> Broker:
    """Start an anonymous broker; other MQTT clients may publish to it while it runs."""
    broker = Broker(broker_config(host, port))
    await broker.start()
    return broker
