"""MQTT client ids: one namespace per broker, split between devices and Vigil's own services.

A broker knows one session per client id, and a CONNECT with an id in use disconnects the session
holding it (MQTT 3.1.1 §3.1.4). On the scaled path Mosquitto forces a device's client id to its
username, its device id (`use_username_as_clientid` on the device listeners), so a device can only
ever displace its own session. Vigil's services (gateways) log in on their own listener with ids
of their choosing, and persistent sessions behind them; those ids all start with `vigil-`, and no
device may be enrolled under that prefix, so no device can hold (and so take over) a gateway's id
(issue 11, docs/security.md "Devices").
"""

from __future__ import annotations

SERVICE_PREFIX = "vigil-"


def is_service_client_id(client_id: str) -> bool:
    """Whether this id is in the services' half of the namespace (any case: never a device's)."""
    return client_id.lower().startswith(SERVICE_PREFIX)


def service_client_id(name: str) -> str:
    """A service's client id for `name`: `name` itself if it already is one, else `vigil-gw-NAME`."""
    return name if is_service_client_id(name) else f"{SERVICE_PREFIX}gw-{name}"
