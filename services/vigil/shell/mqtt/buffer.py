"""The bounded hand-off between where device messages arrive and the processor that takes them."""

from __future__ import annotations

import asyncio
from collections import deque

from vigil.shell.mqtt.message import Message


class MessageBuffer:
    """A FIFO of received messages that the processor takes in batches (MqttSource, BrokerTap)."""

    def __init__(self, max_buffered: int) -> None:
        self.buffer: deque[Message] = deque()
        self.ready = asyncio.Event()
        self.max_buffered = max_buffered
        self.received = 0

    async def take(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to `max_messages` messages, waiting at most `timeout` s for the first."""
        if not self.buffer:
            self.ready.clear()
            if not self.buffer:
                # asyncio.timeout, not asyncio.wait_for: on Python 3.11, wait_for swallows a
                # cancellation that lands in the same loop iteration as `ready` being set
                # (CPython gh-86296), and the runtime's stop() then waits forever for this task.
                try:
                    async with asyncio.timeout(timeout):
                        await self.ready.wait()
                except TimeoutError:
                    return []
        buffer = self.buffer
        out = []
        while buffer and len(out) < max_messages:
            out.append(buffer.popleft())
        self._taken()
        return out

    def _taken(self) -> None:
        """Room was made in the buffer (a hook for sources that hold their producer back)."""

    def acknowledge(self, messages: list[Message]) -> None:
        """The batch holding these messages is durable: acknowledge them to their publishers."""

    def not_stored(self, messages: list[Message]) -> None:
        """The batch holding these messages failed: they stay unacknowledged, so that the broker
        or their publisher sends them again (by default nothing more to do)."""

    async def acknowledged(self) -> None:
        """Wait until the acknowledgements sent so far are out (a hook for sources that send them later)."""

    @property
    def depth(self) -> int:
        return len(self.buffer)
