"""BrokerAccess on its own: the topic ACL per action, connect rules, and the development mode's warnings."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from amqtt.contexts import Action

from vigil.runtimes.embedded.access import ANONYMOUS_WARNING, BrokerAccess
from vigil.shell.observability.metrics import Metrics

DEVICE = "wr-1"


def session(device: str | None, **fields: object) -> SimpleNamespace:
    return SimpleNamespace(vigil_device=device, username=device or None, client_id="c", will_flag=False,
                           will_topic=None, **fields)


@pytest.fixture
def access():
    access = BrokerAccess(object(), metrics=Metrics())  # type: ignore[arg-type] - no login checked here
    yield access
    access.close()


@pytest.mark.parametrize("action, topic, allowed", [
    (Action.PUBLISH, "vigil/v1/devices/wr-1/vitals", True),
    (Action.PUBLISH, "vigil/v1/devices/wr-1/status", True),
    (Action.PUBLISH, "vigil/v1/devices/wr-1/errors", False),
    (Action.PUBLISH, "vigil/v1/devices/wr-2/vitals", False),
    (Action.PUBLISH, "vigil/v1/devices/wr-1/vitals/more", False),
    (Action.PUBLISH, "elsewhere", False),
    (Action.SUBSCRIBE, "vigil/v1/devices/wr-1/errors", True),
    (Action.SUBSCRIBE, "vigil/v1/devices/wr-1/#", False),
    (Action.SUBSCRIBE, "vigil/v1/devices/+/errors", False),
    (Action.SUBSCRIBE, "#", False),
    (Action.SUBSCRIBE, "vigil/v1/devices/wr-1/vitals", False),
    (Action.RECEIVE, "vigil/v1/devices/wr-1/errors", True),
    (Action.RECEIVE, "vigil/v1/devices/wr-2/errors", False),
])
def test_a_device_uses_only_its_own_topics(access, action, topic, allowed):
    assert access.permits(session(DEVICE), topic, action) is allowed
    if not allowed:
        assert access.metrics.mqtt_refused.labels(f"{action.value}_topic")._value.get() == 1


def test_a_session_that_did_not_log_in_may_do_nothing(access):
    assert not access.permits(session(None), "vigil/v1/devices/wr-1/vitals", Action.PUBLISH)
    assert not access.permits(session(None), "vigil/v1/devices/wr-1/errors", Action.SUBSCRIBE)


def test_connect_rules(access):
    other_owner = SimpleNamespace(username="wr-2")
    assert access.may_connect(session(DEVICE), DEVICE, None)
    assert access.may_connect(session(DEVICE), DEVICE, SimpleNamespace(username=DEVICE))  # its own session
    assert not access.may_connect(session(DEVICE), DEVICE, other_owner)  # another device's client id
    assert not access.may_connect(SimpleNamespace(username=DEVICE, client_id="c", will_flag=True,
                                                  will_topic="vigil/v1/devices/wr-2/status"), DEVICE, None)
    assert access.may_connect(SimpleNamespace(username=DEVICE, client_id="c", will_flag=True,
                                              will_topic="vigil/v1/devices/wr-1/status"), DEVICE, None)


def test_no_credential_store_no_broker_unless_anonymous_is_asked_for():
    with pytest.raises(ValueError):
        BrokerAccess(None)


async def test_the_development_mode_warns_at_start_and_on_healthz(caplog):
    caplog.set_level(logging.WARNING, "vigil.broker.access")
    access = BrokerAccess.anonymous_for_development()
    access.start()
    try:
        assert ANONYMOUS_WARNING in caplog.text
        assert access.health() == {"authentication": "anonymous allowed", "warning": ANONYMOUS_WARNING}
        assert access.permits(session(""), "#", Action.SUBSCRIBE)
    finally:
        access.close()


@pytest.mark.parametrize("port, tls", [(1884, None), (1884, "tls"), (None, "tls")])
def test_every_listener_binds_the_configured_address_and_nothing_else(port, tls):
    """amqtt also starts its "default" listener, on 0.0.0.0:1883 when it names no address: a merge
    once left an open listener on every interface beside the configured ones."""
    from vigil.runtimes.embedded.broker import TlsListener, broker_config

    config = broker_config("127.0.0.1", port, TlsListener(8883, "c.pem", "k.pem") if tls else None)
    listeners = config["listeners"]
    assert "default" in listeners
    assert sorted(listener["bind"] for listener in listeners.values()) == sorted(
        f"127.0.0.1:{p}" for p in (port, 8883 if tls else None) if p is not None)
