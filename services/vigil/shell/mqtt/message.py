"""One MQTT message as it arrived, before any check: what sources hand to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    received_at: float  # wall clock, epoch seconds
    mid: int = 0
