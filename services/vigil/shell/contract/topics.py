"""MQTT topic layout, version 1: one topic tree per device."""

from __future__ import annotations

PREFIX = "vigil/v1/devices"
VITALS_TOPIC_FILTER = f"{PREFIX}/+/vitals"
STATUS_TOPIC_FILTER = f"{PREFIX}/+/status"


def vitals_topic(device_id: str) -> str:
    """Where a device publishes its batches of samples (QoS 1)."""
    return f"{PREFIX}/{device_id}/vitals"


def status_topic(device_id: str) -> str:
    """Where a device's retained online/offline status lives (last will: offline)."""
    return f"{PREFIX}/{device_id}/status"


def device_id_from_topic(topic: str) -> str | None:
    """The device id in a v1 device topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != PREFIX or not parts[3]:
        return None
    return parts[3]


def errors_topic(device_id: str) -> str:
    """Where Vigil tells a device why its payload was refused (QoS 1, not retained; issue 13)."""
    return f"{PREFIX}/{device_id}/errors"
