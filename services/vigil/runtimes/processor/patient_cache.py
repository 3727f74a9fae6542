"""Patients' monitors for the Faust worker: in memory between batches, durable in a table.

Each patient's PatientMonitor is pickled into a Faust table whose changelog topic is
co-partitioned with `vigil.readings`: a worker that restarts, or takes over a partition in a
rebalance, recovers each patient's state from the changelog. Between batches the monitors stay
in memory; after a rebalance (or a failure) the cache is forgotten and state is read back from
the table. Satisfies the pipeline's PatientStates.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, MutableMapping

from vigil.core.patient import PatientMonitor


class TablePatientStates:
    """A cache of patients' monitors over a table of pickled monitors keyed by patient id bytes."""

    def __init__(self, table: MutableMapping[bytes, bytes], new_monitor: Callable[[str], PatientMonitor]) -> None:
        self.table = table
        self.new_monitor = new_monitor
        self.cache: dict[str, PatientMonitor] = {}

    def get(self, patient_id: str) -> PatientMonitor:
        monitor = self.cache.get(patient_id)
        if monitor is None:
            blob = self.table.get(patient_id.encode())
            monitor = pickle.loads(blob) if blob else self.new_monitor(patient_id)
            self.cache[patient_id] = monitor
        return monitor

    def in_memory(self) -> Iterable[PatientMonitor]:
        return self.cache.values()

    def forget(self) -> None:
        """Drop the cache: the next `get` reads the table (a rebalance, or memory ahead of it)."""
        self.cache.clear()

    @property
    def forgotten(self) -> bool:
        """Nothing in memory: state will come from the table."""
        return not self.cache

    def patient_keys(self) -> set[bytes]:
        """Every patient this worker holds state for: in the table, or only in memory so far."""
        return set(self.table.keys()) | {patient_id.encode() for patient_id in self.cache}

    @staticmethod
    def snapshot(monitors: dict[str, PatientMonitor]) -> list[tuple[bytes, bytes]]:
        """The monitors' state now, pickled: the next batch moves them on while this one is stored."""
        return [(patient_id.encode(), pickle.dumps(monitor, protocol=pickle.HIGHEST_PROTOCOL))
                for patient_id, monitor in monitors.items()]

    def save(self, snapshot: list[tuple[bytes, bytes]]) -> None:
        """Write a snapshot to the table (its changelog): the durable copy."""
        table = self.table
        for key, blob in snapshot:
            table[key] = blob
