"""The pipeline decides and returns one Decision; it stores nothing and calls no one."""

from __future__ import annotations

import time

from vigil.core.reading import Reading
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.patients import PatientBook, monitor_factory
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Message, Pipeline
from vigil.shell.registry import Registry
from vigil.core.quality import DEFAULT_QUALITY


def sick(patient_id: str, start: float, count: int = 20) -> list[Reading]:
    return [Reading(patient_id, patient_id.replace("pt", "wr"), start + 15 * k, k + 1, hr=135.0, spo2=86.0, rr=28.0,
                    temp=39.5, sbp=85.0, dbp=50.0, accel=0.02, contact=True) for k in range(count)]


class Known:
    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.asked: list[list[str]] = []

    def known_alerts(self, alert_ids: list[str]) -> set[str]:
        self.asked.append(alert_ids)
        return self.ids & set(alert_ids)


def test_a_batch_decision_carries_rows_changes_announcements_and_patients():
    now = time.time()
    pipeline = Pipeline(Registry(), Metrics(), NOTHING_STORED)
    decision = pipeline.process_readings([(sick("pt-1", now - 300), Message("t", b"", now))])
    assert len(decision.batch.readings) == 20
    raised = [a for a in decision.announced if a.event == "raised"]
    assert raised and len(decision.alert_changes) == len(decision.batch.alerts) == len(decision.announced)
    assert [c.alert.alert_id for c in decision.alert_changes] == [a.alert.alert_id for a in decision.announced]
    assert all(a.patient_message and a.clinician_summary for a in decision.announced)
    assert list(decision.patients) == ["pt-1"] and decision.model_scores == {}
    assert pipeline.totals.readings == 20 and len(pipeline.totals.raised) == len(raised)


def test_stored_alert_ids_are_never_raised_again():
    now = time.time()
    first = Pipeline(Registry(), Metrics(), NOTHING_STORED).process_readings([(sick("pt-1", now - 300), Message("t", b"", now))])
    known = Known({a.alert.alert_id for a in first.announced})
    again = Pipeline(Registry(), Metrics(), known).process_readings([(sick("pt-1", now - 300), Message("t", b"", now))])
    assert known.asked and again.announced == [] and again.alert_changes == [] and again.batch.alerts == []
    assert len(again.batch.readings) == 20  # readings are stored again (idempotent by key)


def test_tick_advances_the_named_or_every_patient_and_names_those_whose_alerts_changed():
    now = time.time()
    book = PatientBook(monitor_factory(Registry(), DEFAULT_QUALITY))
    pipeline = Pipeline(Registry(), Metrics(), NOTHING_STORED, patients=book)
    pipeline.process_readings([(sick("pt-1", now - 300), Message("t", b"", now)),
                               (sick("pt-2", now - 300), Message("t", b"", now))])
    only = pipeline.tick(now + 3600, ["pt-1"])
    assert [(a.event, a.alert.kind, a.alert.patient_id) for a in only.announced] == [("raised", "device_offline", "pt-1")]
    assert list(only.patients) == ["pt-1"] and only.patients["pt-1"] is book.get("pt-1")
    every = pipeline.tick(now + 3600)
    assert {a.alert.patient_id for a in every.announced} == {"pt-2"} and list(every.patients) == ["pt-2"]
    assert not pipeline.tick(now + 3601).alert_changes


def test_rebuild_is_quiet_and_leaves_state_as_before():
    now = time.time()
    metrics = Metrics()
    pipeline = Pipeline(Registry(), metrics, NOTHING_STORED)
    assert pipeline.rebuild(sick("pt-1", now - 300)) == 20
    # The alerts are open again in memory, so the same readings raise nothing new.
    again = pipeline.process_readings([(sick("pt-1", now - 300)[-1:], Message("t", b"", now))])
    assert again.announced == [] and pipeline.totals.raised == []
    assert b"vigil_open_alerts 4.0" in metrics.exposition()


def test_patient_book_creates_once_and_counts():
    counts: list[int] = []
    book = PatientBook(monitor_factory(Registry(), DEFAULT_QUALITY), counts.append)
    first = book.get("pt-1")
    assert book.get("pt-1") is first and first.patient_id == "pt-1"
    book.get("pt-2")
    assert counts == [1, 2] and len(book) == 2 and list(book.in_memory()) == [first, book.get("pt-2")]
