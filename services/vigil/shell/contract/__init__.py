"""The device contract: what wearables publish over MQTT, as pydantic v2 models.

Shells validate raw bytes against this contract before anything reaches the clinical core.
"""

from vigil.shell.contract.device import (
    ACVPU,
    DeviceStatus,
    ManualEntry,
    VitalSample,
    VitalsBatch,
)
from vigil.shell.contract.topics import (
    STATUS_TOPIC_FILTER,
    VITALS_TOPIC_FILTER,
    device_id_from_topic,
    status_topic,
    vitals_topic,
)

__all__ = [
    "ACVPU",
    "DeviceStatus",
    "ManualEntry",
    "VitalSample",
    "VitalsBatch",
    "STATUS_TOPIC_FILTER",
    "VITALS_TOPIC_FILTER",
    "device_id_from_topic",
    "status_topic",
    "vitals_topic",
]
