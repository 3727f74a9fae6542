"""Each patient's PatientMonitor, behind one small interface.

The pipeline asks for a patient's monitor by id and never knows where it lives: in a dict for
the embedded runtime, replay and benches (`PatientBook`), or in the Faust processor's cache over
its changelog table (vigil.runtimes.processor.patient_cache)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from vigil.core.coverage import DEFAULT_COVERAGE, CoverageLimits
from vigil.core.patient import PatientMonitor
from vigil.core.quality import QualityLimits
from vigil.shell.registry import Registry


class PatientStates(Protocol):
    """Where the pipeline reads and creates patients' monitors."""

    def get(self, patient_id: str) -> PatientMonitor:
        """The patient's monitor, created (empty) for a patient seen for the first time."""
        ...

    def in_memory(self) -> Iterable[PatientMonitor]:
        """The monitors held right now: the ones a timer tick without a patient list advances."""
        ...


def monitor_factory(registry: Registry, quality: QualityLimits,
                    coverage: CoverageLimits = DEFAULT_COVERAGE) -> Callable[[str], PatientMonitor]:
    """How a new patient's monitor is made: the roster's clinical context, the quality limits and
    the coverage bounds."""

    def new_monitor(patient_id: str) -> PatientMonitor:
        return PatientMonitor(patient_id, registry.context_for(patient_id), quality=quality, coverage=coverage)

    return new_monitor


class PatientBook:
    """Every patient's monitor in one dict, for as long as the process lives."""

    def __init__(self, new_monitor: Callable[[str], PatientMonitor],
                 counted: Callable[[int], None] | None = None) -> None:
        self.monitors: dict[str, PatientMonitor] = {}
        self.new_monitor = new_monitor
        self.counted = counted  # told the number of patients whenever a new one arrives (a gauge)

    def get(self, patient_id: str) -> PatientMonitor:
        monitor = self.monitors.get(patient_id)
        if monitor is None:
            monitor = self.monitors[patient_id] = self.new_monitor(patient_id)
            if self.counted is not None:
                self.counted(len(self.monitors))
        return monitor

    def in_memory(self) -> Iterable[PatientMonitor]:
        return self.monitors.values()

    def __len__(self) -> int:
        return len(self.monitors)
