"""The processing shell against a real SQLite file: dead letters kept, nothing duplicated."""

import json
import time

from vigil.shell.pipeline.pipeline import Message, Pipeline
from vigil.shell.observability.metrics import Metrics
from vigil.shell.registry import Registry, Roster
from vigil_simulators.cohort import parse_scenarios, plan_cohort
from vigil_simulators.fleet import Fleet
from vigil.shell.stores.tables import alerts, dead_letters, readings
from vigil.shell.stores.sql import SqlStore


def build(tmp_path, bad=0.05, scenarios="clinical"):
    now = time.time()
    plan = plan_cohort(6, 21, now - 6 * 3600, 6 * 3600, parse_scenarios(scenarios))
    fleet = Fleet(plan, rate_hz=1 / 15, batch_size=4, bad_payload_rate=bad)
    msgs = [Message(m.topic, m.payload, now) for m in fleet.batches_until(now)]
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    metrics = Metrics()
    announced = []
    pipeline = Pipeline(Registry(Roster.model_validate(plan.roster())), metrics, store)
    return plan, fleet, msgs, store, metrics, pipeline, announced


def process_and_store(pipeline, store, msgs, announced=None):
    """What a runtime does with a batch: decide, store the decision's rows, announce."""
    decision = pipeline.process(msgs)
    store.write(decision.batch)
    if announced is not None:
        announced.extend(decision.announced)


def test_rejections_are_counted_logged_and_kept_with_raw_bytes(tmp_path, caplog):
    caplog.set_level("INFO", logger="vigil.pipeline")
    _, fleet, msgs, store, metrics, pipeline, _ = build(tmp_path)
    for start in range(0, len(msgs), 200):
        process_and_store(pipeline, store, msgs[start:start + 200])
    assert sum(fleet.counts.faults.values()) > 5
    # Every rejection is counted per (device, reason); rows are kept within each device's budget (issue 12).
    kept: dict[str, int] = {}
    for (_device, reason), n in store.dead_letter_counts().items():
        kept[reason] = kept.get(reason, 0) + n
    assert kept == dict(pipeline.totals.rejected)
    rows = store.dead_letter_reasons()
    assert rows.keys() == kept.keys() and all(0 < rows[reason] <= kept[reason] for reason in kept)
    exposition = metrics.exposition().decode()
    for reason, count in kept.items():
        assert f'vigil_rejected_total{{reason="{reason}"}} {float(count)}' in exposition
    assert all(row["raw"] for row in store.dead_letters(limit=1000))
    logged = [r for r in caplog.records if r.getMessage() == "payload rejected"]
    assert len(logged) == sum(kept.values()) and all(r.reason and r.detail for r in logged)
    # Every injected fault produced a rejection of the matching reason.
    from vigil_simulators.faults import FAULTS

    for fault, count in fleet.counts.faults.items():
        assert kept.get(FAULTS[fault], 0) >= 1, fault
    # Partial batches: readings from batches with one impossible sample were still stored.
    assert store.count(readings) == pipeline.totals.readings > 0


def test_replaying_the_same_messages_duplicates_nothing(tmp_path):
    _, _, msgs, store, _, pipeline, announced = build(tmp_path, bad=0.0)
    process_and_store(pipeline, store, msgs, announced)
    n_readings, n_alerts = store.count(readings), store.count(alerts)
    raised = [a for a in announced if a.event == "raised"]
    assert n_alerts >= 3 and len(raised) == n_alerts

    # A restart: a fresh pipeline (empty state) receives the same messages again.
    metrics = Metrics()
    again = []
    fresh = Pipeline(pipeline.registry, metrics, store)
    process_and_store(fresh, store, msgs, again)
    assert store.count(readings) == n_readings
    assert store.count(alerts) == n_alerts
    assert [a for a in again if a.event == "raised"] == [], "no alert is announced twice"


def test_a_batch_redelivered_after_newer_ones_is_stored_flagged_late_not_lost(tmp_path):
    """A broker may redeliver a batch after newer ones when its subscriber reconnects (a CI run
    after a gateway kill -9: seq 109-112 arrived after 113-120 and used to be refused as
    out of order, so acknowledged readings never reached the series)."""
    _, _, msgs, store, metrics, pipeline, _ = build(tmp_path, bad=0.0)
    vitals = [m for m in msgs if m.topic.endswith("/vitals")]
    device = vitals[0].topic
    mine = [m for m in vitals if m.topic == device]
    held, newer = mine[10], mine[11:13]
    order = [m for m in msgs if m not in (held, *newer)]
    at = order.index(mine[9]) + 1
    order[at:at] = [*newer, held]  # the held batch comes after the two newer ones
    process_and_store(pipeline, store, order)
    assert store.count(readings) == pipeline.totals.readings == sum(
        len(json.loads(m.payload)["samples"]) for m in vitals), "every reading stored, once"
    with store.engine.connect() as conn:
        late = conn.execute(readings.select().where(readings.c.flags == "late")).all()
    assert [row.seq for row in late] == [s["seq"] for s in json.loads(held.payload)["samples"]]
    assert all(row.news2 is None for row in late), "late readings are not assessed"
    assert 'vigil_quality_flags_total{flag="late"} 4.0' in metrics.exposition().decode()
    assert dict(pipeline.totals.rejected) == {}


def test_alert_rows_carry_values_rule_and_texts(tmp_path):
    _, _, msgs, store, _, pipeline, _ = build(tmp_path, bad=0.0)
    process_and_store(pipeline, store, msgs)
    row = store.alerts(limit=1)[0]
    assert row["values"] and row["rule"] and row["patient_message"] and row["clinician_summary"]
    assert row["state"] in ("open", "cleared")
    json.dumps(row, default=str)
    with store.engine.connect() as conn:
        assert conn.execute(dead_letters.select()).first() is None


def test_model_scores_are_stored_with_their_model_version(tmp_path):
    from sqlalchemy import select

    from vigil.shell.scoring.loading import model_stage_for
    from vigil.shell.stores.tables import scores

    _, _, msgs, store, metrics, pipeline, _ = build(tmp_path, bad=0.0)
    stage, status = model_stage_for(True, None)
    assert stage is not None and status["loaded"]
    pipeline = Pipeline(pipeline.registry, metrics, store, model_stage=stage)
    for start in range(0, len(msgs), 100):
        process_and_store(pipeline, store, msgs[start:start + 100])
    with store.engine.connect() as conn:
        rows = conn.execute(select(scores)).all()
    assert len(rows) >= 6
    assert {row.model_version for row in rows} == {stage.version}
    assert all(0.0 <= row.risk <= 1.0 for row in rows)


def test_models_off_or_broken_means_rules_alone_with_a_reason(tmp_path):
    from vigil.shell.scoring.loading import model_stage_for

    assert model_stage_for(False, None) == (None, {"enabled": False, "loaded": False})
    stage, status = model_stage_for(True, tmp_path)  # an empty directory: no models
    assert stage is None and status["loaded"] is False and "metadata" in str(status["error"])


def test_a_status_with_a_key_given_twice_is_refused(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    roster = Roster.model_validate({"patients": [{"patient_id": "pt-1", "devices": [{"device_id": "wr-1"}]}]})
    pipeline = Pipeline(Registry(roster), Metrics(), store)
    topic = "vigil/v1/devices/wr-1/status"
    good = b'{"v":1,"device_id":"wr-1","state":"online"}'
    twice = b'{"v":1,"device_id":"wr-1","state":"offline","state":"online"}'
    decision = pipeline.process([Message(topic, good, time.time()), Message(topic, twice, time.time())])
    assert [row.state for row in decision.batch.device_status] == ["online"]
    assert [(row.reason, row.raw) for row in decision.batch.dead_letters] == [("schema_invalid", twice)]


def test_stored_alert_texts_quote_the_configured_emergency_number(tmp_path):
    """VIGIL_EMERGENCY_NUMBER reaches the alert's own record too, not only the messages sent."""
    now = time.time()
    plan = plan_cohort(4, 21, now - 6 * 3600, 6 * 3600, parse_scenarios("clinical"))
    msgs = [Message(m.topic, m.payload, now) for m in Fleet(plan, rate_hz=1 / 15, batch_size=4).batches_until(now)]
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    pipeline = Pipeline(Registry(Roster.model_validate(plan.roster())), Metrics(), store, emergency_number="112")
    decision = pipeline.process(msgs)
    urgent = [row for row in decision.batch.alerts if row.severity in ("high", "critical") and row.patient_message]
    assert urgent, "the clinical scenarios raise high or critical alerts"
    assert all("112" in row.patient_message and "999" not in row.patient_message for row in urgent)
    assert all("999" not in a.patient_message for a in decision.announced)
