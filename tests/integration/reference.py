"""What the scaled path must reproduce: the messages the publisher sends, the alerts the
embedded pipeline raises on them, and the reading seqs each patient published."""

from __future__ import annotations

import time
from pathlib import Path

from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import Message, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.sql import SqlStore
from vigil_simulators.fleet import Fleet

RATE = 1 / 15


def published(plan, end: float) -> list:
    """Every message the publisher sends up to sim time `end`, in order: its batches, then the
    farewells (each device's last, partial batch, and its offline status). A reference without
    the partial batches misses what their readings raise (a CI run: a hypoxaemia alert whose
    third minute of SpO2 <= 85 came in the last, partial batch)."""
    fleet = Fleet(plan, RATE, 4, 0.0)
    return [*fleet.batches_until(end), *fleet.farewells(end)]


def reference_alert_ids(plan, tmp_path: Path) -> set[str]:
    """What the embedded pipeline raises on exactly the same messages."""
    return set(reference_alerts(plan, tmp_path))


def reference_alerts(plan, tmp_path: Path) -> dict[str, str]:
    """What the embedded pipeline raises on exactly the same messages: alert id -> patient id."""
    store = SqlStore(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    pipeline = Pipeline(Registry(Roster.model_validate(plan.roster())), Metrics(), store)
    now = time.time()
    store.write(pipeline.process([Message(m.topic, m.payload, now)
                                  for m in published(plan, plan.start_t + plan.duration_s)]).batch)
    return {a.alert_id: a.patient_id for a in pipeline.totals.raised}


def expected_seqs(plan, end: float) -> dict[str, set[int]]:
    """Each patient's published reading seqs."""
    from vigil.shell.contract.device import VitalsBatch

    expected: dict[str, set[int]] = {}
    for message in published(plan, end):
        if message.topic.endswith("/vitals"):
            seqs = expected.setdefault(message.device_id.replace("-wr-", "-pt-"), set())
            seqs.update(sample.seq for sample in VitalsBatch.model_validate_json(message.payload).samples)
    return expected
