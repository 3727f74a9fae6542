"""Which of a worker's patients have gone quiet: the clock that readings cannot provide.

A device that stops sending needs a clock: a device is silent when nothing has arrived for it
for its stale time (wall clock), counted at the earliest from when this worker took its
partitions: a backlog being replayed, or a restart, is not silence.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.partitioner import DefaultPartitioner

partition_of = DefaultPartitioner()  # the gateway's producer's: a patient's readings partition


class SilenceWatch:
    """When each patient's readings last reached this worker, and who has been quiet too long."""

    def __init__(self, silent_after_s: float, partitions: int, now: float) -> None:
        self.silent_after_s = silent_after_s
        self.partitions = list(range(partitions))
        self.assigned_at = now
        self.arrived: dict[str, float] = {}

    def assigned(self, now: float) -> None:
        """This worker (re)took its partitions: nobody counts as silent before `now`."""
        self.assigned_at = now

    def heard(self, patient_ids: Iterable[str], now: float) -> None:
        """Readings of these patients reached this worker at `now`."""
        self.arrived.update(dict.fromkeys(patient_ids, now))

    def silent(self, patient_keys: Iterable[bytes], mine: set[int], now: float) -> list[str]:
        """The patients (by key) on partitions `mine` that nothing was heard from for too long."""
        quiet_since = now - self.silent_after_s
        floor, arrived, every = self.assigned_at, self.arrived, self.partitions
        return [key.decode() for key in patient_keys if max(arrived.get(key.decode(), 0.0), floor) < quiet_since
                and partition_of(key, every, every) in mine]

    def mine(self, patient_keys: Iterable[bytes], mine: set[int]) -> list[str]:
        """The patients (by key) on partitions `mine`: the enrolled ones this worker watches."""
        every = self.partitions
        return [key.decode() for key in patient_keys if partition_of(key, every, every) in mine]
