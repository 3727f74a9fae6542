"""MQTT client ids: devices' and Vigil's services' halves of one namespace never meet."""

from __future__ import annotations

from vigil.runtimes.gateway.gateway import gateway_client_id
from vigil.shell.mqtt.client_ids import is_service_client_id, service_client_id


def test_every_gateway_client_id_is_in_the_services_half():
    assert gateway_client_id("gw-1") == "vigil-gw-gw-1"
    assert gateway_client_id("7") == "vigil-gw-7"
    assert gateway_client_id("vigil-ingest-ward-a") == "vigil-ingest-ward-a"  # already one: unchanged
    assert gateway_client_id(None).startswith("vigil-ingest-")  # the default, as before the split
    assert all(is_service_client_id(gateway_client_id(name)) for name in ("gw-1", "wr-1", "", None))


def test_a_device_id_is_never_a_service_client_id():
    assert not is_service_client_id("wr-1")
    assert not is_service_client_id("vigil")  # no dash: not the prefix
    assert is_service_client_id("VIGIL-gw-1")  # any case: refused for devices too
    assert service_client_id("wr-1") == "vigil-gw-wr-1"  # a gateway named like a device still gets its own id
