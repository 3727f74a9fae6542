"""VIGIL_APPROVE_PATIENT_TEXTS: a model's text for the patient waits for a clinician (issue 14).

The template text has gone out already; the model's richer text to the patient is held in the
outbox until a clinician approves it (then delivered) or refuses it (never delivered). A text
whose incident resolved meanwhile can no longer be approved: it would not be true any more."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, update
from standins.openai_api import OpenAIStandIn

from vigil.core.events import Alert
from vigil.shell.desk.explanation_worker import ExplanationWorker
from vigil.shell.explain.explainer import Explainer
from vigil.shell.explain.llm import LlmConfig
from vigil.shell.explain.samples import sample_alert
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.desk_store import HELD_FOR_APPROVAL, TEXT_REFUSED, DeskStore
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import incident_alerts, incidents

KEY = "sk-standin-test"
CLINICIAN = {"by": "local:dr-ahmed", "by_name": "Dr Ahmed"}


@pytest.fixture
def llm():
    with OpenAIStandIn(api_key=KEY) as server:
        server.mode = "good"
        yield server


def ward(tmp_path, llm, hold: bool):
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    desk = DeskStore(store.engine)
    alert = Alert(**{k: v for k, v in sample_alert("hypoxaemia").items() if k in Alert.__dataclass_fields__})
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(insert(incidents).values(
            incident_id="in-1", patient_id=alert.patient_id, category="clinical", severity="high", state="open",
            opened_t=now, updated_t=now, revision=1, escalation_level=0, doc={}))
        conn.execute(insert(incident_alerts).values(alert_id=alert.alert_id, incident_id="in-1"))
    roster = Roster.model_validate({"patients": [{"patient_id": alert.patient_id, "devices": []}]})
    explainer = Explainer(LlmConfig(base_url=llm.base_url, api_key=KEY, model="standin-gpt", timeout_s=5.0))
    worker = ExplanationWorker(explainer, desk, Registry(roster), Metrics(), emergency_number="999", clock=time.time,
                               hold_patient_texts=hold)
    return store, desk, alert, worker


def outbox_by_audience(desk: DeskStore) -> dict[str, str]:
    return {row["audience"]: row["status"] for row in desk.outbox_rows(incident_id="in-1")}


async def test_without_the_setting_the_model_text_goes_to_the_patient_at_once(tmp_path, llm):
    _, desk, alert, worker = ward(tmp_path, llm, hold=False)
    await worker.explain(alert)
    assert outbox_by_audience(desk) == {"clinician": "pending", "patient": "pending"}
    assert desk.held_texts() == []


async def test_a_held_text_waits_then_goes_once_approved_with_who_approved_it(tmp_path, llm):
    _, desk, alert, worker = ward(tmp_path, llm, hold=True)
    await worker.explain(alert)
    assert outbox_by_audience(desk) == {"clinician": "pending", "patient": HELD_FOR_APPROVAL}
    [held] = desk.held_texts()
    assert held["patient_id"] == alert.patient_id and held["incident_state"] == "open" and held["body"]
    assert desk.held_texts(patient_ids=["pt-other"]) == [], "scoped to the patients a caller may see"
    assert desk.decide_held(held["key"], True, CLINICIAN, time.time())
    assert outbox_by_audience(desk)["patient"] == "pending"
    assert desk.held_text(held["key"])["payload"]["review"] | {"t": 0} == {"approved": True, "t": 0, **CLINICIAN}
    # Decided once: a second decision (a double click, a second clinician) changes nothing.
    assert not desk.decide_held(held["key"], False, CLINICIAN, time.time())
    assert outbox_by_audience(desk)["patient"] == "pending"


async def test_a_refused_text_is_never_sent_and_a_stale_one_cannot_be_approved(tmp_path, llm):
    store, desk, alert, worker = ward(tmp_path, llm, hold=True)
    await worker.explain(alert)
    [held] = desk.held_texts()
    with store.engine.begin() as conn:
        conn.execute(update(incidents).values(state="resolved"))
    assert not desk.decide_held(held["key"], True, CLINICIAN, time.time()), "no longer true: not approved"
    assert desk.held_texts()[0]["incident_state"] == "resolved"
    assert desk.decide_held(held["key"], False, CLINICIAN, time.time())
    assert outbox_by_audience(desk)["patient"] == TEXT_REFUSED and desk.held_texts() == []
    claimed = desk.claim_due(time.time() + 60, 10)
    assert [row["audience"] for row in claimed] == ["clinician"], "the dispatcher never claims a refused text"
