"""What the pipeline decided about one batch (or one timer tick), as one typed value.

The pipeline itself stores nothing and calls no one: the runtime that called it hands the alert
changes to the desk (which adds its rows to the same batch, so one transaction holds both),
stores the batch, and tells the outside world what was announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vigil.core.events import Alert
from vigil.core.patient import PatientMonitor
from vigil.shell.desk.desk import AlertChange
from vigil.shell.mqtt.message import Message
from vigil.shell.stores.sql import WriteBatch


@dataclass(slots=True)
class AnnouncedAlert:
    """An alert event as the outside world sees it: the alert, its words, and how fast it came."""

    event: str  # raised, severity_changed, cleared
    alert: Alert
    patient_message: str
    clinician_summary: str
    latency_s: float
    source: Message | None = None  # the message whose reading raised it (None for timers)
    t: float = 0.0  # when it happened, on the readings' clock


class ModelScore(Protocol):
    """A patient's newest learned scores, as a model stage keeps them."""

    t: float
    anomaly: float
    risk: float
    model_version: str


@dataclass(slots=True)
class Decision:
    """One batch's verdicts: what to store, what the desk must hear, what to announce.

    `patients` are the monitors whose state this decision moved (those with readings for a
    batch; those with alert changes for a tick): the scaled runtime snapshots exactly these.
    `model_scores` is the model stage's newest score for each of those patients (scored in this
    batch or earlier); `batch.scores` holds only the ones scored in this batch, to be stored."""

    batch: WriteBatch = field(default_factory=WriteBatch)
    alert_changes: list[AlertChange] = field(default_factory=list)
    announced: list[AnnouncedAlert] = field(default_factory=list)
    patients: dict[str, PatientMonitor] = field(default_factory=dict)
    model_scores: dict[str, ModelScore] = field(default_factory=dict)
