"""The embedded broker's guard: retained messages only on device status topics, within caps,
every refusal counted; publishes on topics Vigil does not serve counted as unknown_topic."""

from __future__ import annotations

from vigil.runtimes.embedded.broker import BrokerGuard
from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_retained_only_on_status_topics_and_every_refusal_counted():
    metrics = Metrics()
    guard = BrokerGuard(metrics)
    assert guard.may_retain("vigil/v1/devices/d-1/status", 50)
    for topic in ("chat/room", "vigil/v1/devices/d-1/vitals", "vigil/v1/devices/d-1/status/x", "vigil/v1/status"):
        assert not guard.may_retain(topic, 50), topic
    assert sample(metrics, "vigil_broker_retained_refused_total", reason="topic") == 4


def test_the_caps_hold_and_a_replaced_or_cleared_status_frees_its_room():
    metrics = Metrics()
    guard = BrokerGuard(metrics, max_retained=2, max_retained_bytes=1000)
    for device, size in (("a", 400), ("b", 400)):
        topic = f"vigil/v1/devices/{device}/status"
        assert guard.may_retain(topic, size)
        guard.retained(topic, size)
    assert not guard.may_retain("vigil/v1/devices/c/status", 10)  # a third topic: count
    assert guard.may_retain("vigil/v1/devices/a/status", 600)  # replacing a's: 600 + 400 fits
    assert not guard.may_retain("vigil/v1/devices/a/status", 601)  # bytes
    guard.retained("vigil/v1/devices/a/status", 0)  # cleared
    assert guard.may_retain("vigil/v1/devices/c/status", 600)
    assert sample(metrics, "vigil_broker_retained_refused_total", reason="count") == 1
    assert sample(metrics, "vigil_broker_retained_refused_total", reason="bytes") == 1
    assert (sample(metrics, "vigil_broker_retained_messages"), sample(metrics, "vigil_broker_retained_bytes")) == (1, 400)


def test_publishes_on_topics_vigil_does_not_serve_are_counted():
    metrics = Metrics()
    guard = BrokerGuard(metrics)
    for topic in ("vigil/v1/devices/d-1/vitals", "vigil/v1/devices/d-1/status"):
        guard.published(topic)
    for topic in ("chat/room", "vigil/v1/devices/d-1/errors", "vigil/v2/devices/d-1/vitals"):
        guard.published(topic)
    assert sample(metrics, "vigil_rejected_total", reason="unknown_topic") == 3


def test_the_caps_come_from_the_settings():
    guard = BrokerGuard.from_settings(VigilSettings(broker_retained_max=7, broker_retained_max_bytes=99), Metrics())
    assert (guard.max_retained, guard.max_retained_bytes) == (7, 99)
