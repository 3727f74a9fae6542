"""The pipeline feeds each patient's coverage (issue 13): refusals, late samples, status and the
last will, on the wall clock of receipt; and the gateway's notes do the same on the Kafka path."""

import json
from datetime import datetime, timezone

from vigil.shell.contract.validation import ContractLimits
from vigil.shell.mqtt.message import Message
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.streams.coverage_notes import CoverageNotes
from vigil.shell.streams.records import ReadingsRecord

ROSTER = Roster.model_validate({"patients": [
    {"patient_id": "pt-a", "devices": [{"device_id": "wr-a"}]},
    {"patient_id": "pt-b", "devices": [{"device_id": "wr-b"}]},
]})
T0 = 1_800_000_000.0


def vitals(device_id: str, seq: int, now: float, *, t: float | None = None, **fields: object) -> Message:
    sample = {"ts": datetime.fromtimestamp(now if t is None else t, timezone.utc).isoformat(), "seq": seq,
              "hr_bpm": 70.0 + seq % 5, "spo2_pct": 96.0 + seq % 3, "rr_per_min": 15.0, **fields}
    return Message(f"vigil/v1/devices/{device_id}/vitals",
                   json.dumps({"v": 1, "device_id": device_id, "samples": [sample]}).encode(), now)


def status(device_id: str, state: str, now: float) -> Message:
    return Message(f"vigil/v1/devices/{device_id}/status",
                   json.dumps({"v": 1, "device_id": device_id, "state": state}).encode(), now)


def raised(decisions: list, kind: str) -> list:
    return [c for d in decisions for c in d.alert_changes if c.event == "raised" and c.alert.kind == kind]


def cleared(decisions: list, kind: str) -> list:
    return [c for d in decisions for c in d.alert_changes if c.event == "cleared" and c.alert.kind == kind]


def run(pipeline: Pipeline, start: float, seconds: int, make) -> list:
    """One message every 5 s from `make(seq, now)` (or none), a tick every second."""
    out = []
    for k in range(seconds):
        now = start + k
        if k % 5 == 0 and make is not None:
            message = make(k, now)
            if message is not None:
                out.append(pipeline.process([message]))
        out.append(pipeline.tick(now))
    return out


def test_a_flood_of_refused_payloads_raises_not_monitored_naming_the_reason_and_data_closes_it():
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    good = run(pipeline, T0, 120, lambda k, now: vitals("wr-a", 1000 + k, now))
    assert not raised(good, "not_monitored")
    renamed = run(pipeline, T0 + 120, 180, lambda k, now: vitals("wr-a", 2000 + k, now, heart=70))  # a renamed field
    alerts = raised(renamed, "not_monitored")
    assert len(alerts) == 1 and alerts[0].alert.values == {"cause": "rejected", "reason": "schema_invalid"}
    assert alerts[0].t - (T0 + 120) <= 61
    assert not raised(renamed, "device_offline"), "the cause is named, not silence"
    back = run(pipeline, T0 + 300, 30, lambda k, now: vitals("wr-a", 3000 + k, now))
    assert cleared(back, "not_monitored")[0].t - (T0 + 300) <= 1
    assert not raised(renamed + back, "not_monitored")[1:] and pipeline.patients.get("pt-b").not_monitored.open is None


def test_a_clock_reset_to_1970_is_the_clock_cause():
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED, limits=ContractLimits())
    run(pipeline, T0, 60, lambda k, now: vitals("wr-a", 1000 + k, now))
    reset = run(pipeline, T0 + 60, 120, lambda k, now: vitals("wr-a", k + 1, now, t=86400.0 + k))
    alerts = raised(reset, "not_monitored")
    assert alerts and alerts[0].alert.values == {"cause": "clock", "reason": "stale_timestamp"}


def test_the_last_will_raises_device_offline_in_30_s_not_15_min():
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    run(pipeline, T0, 60, lambda k, now: vitals("wr-a", 1000 + k, now))
    will = pipeline.process([status("wr-a", "offline", T0 + 60)])
    assert will.batch.device_status and not will.alert_changes
    after = run(pipeline, T0 + 61, 60, None)
    alerts = raised(after, "device_offline")
    assert alerts and alerts[0].alert.values["cause"] == "offline" and alerts[0].t - (T0 + 60) <= 31


def test_the_stray_sample_of_the_demo_no_longer_blinds_the_patient():
    """The issue's first finding, through the pipeline: a stray with a time ahead and a huge seq."""
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    run(pipeline, T0, 60, lambda k, now: vitals("wr-a", 1000 + k, now, t=now - 250))
    pipeline.process([vitals("wr-a", 10**9, T0 + 60)])
    brady = run(pipeline, T0 + 61, 600, lambda k, now: vitals("wr-a", 2000 + k, now, t=now - 250, hr_bpm=35.0))
    assert raised(brady, "bradycardia"), "pt-a's bradycardia is seen again"


def test_gateway_notes_reach_the_patient_on_the_kafka_path():
    pipeline = Pipeline(Registry(), Metrics(), NOTHING_STORED)  # a worker without the roster
    registry = Registry(ROSTER)
    decisions = []
    for k in range(0, 120, 5):
        notes = CoverageNotes(registry.patient_for_device)
        from vigil.shell.contract.validation import check_vitals_payload
        message = vitals("wr-a", k + 1, T0 + k, heart=70)
        for rejection in check_vitals_payload(message.topic, message.payload, received_at=message.received_at,
                                              patient_for_device=registry.patient_for_device).rejections:
            notes.refused(rejection)
        if k == 100:
            notes.status(status("wr-a", "offline", T0 + k), ContractLimits())
        records = [ReadingsRecord.model_validate_json(r.to_json()) for r in notes.records()]
        decisions.append(pipeline.process_readings(
            [], notes=[(r.patient_id, r.device_id, r.received_at, r.refused, r.status) for r in records]))
        decisions.append(pipeline.tick(T0 + k))
    decisions.append(pipeline.tick(T0 + 140))
    assert raised(decisions, "not_monitored")[0].alert.values["reason"] == "schema_invalid"
    assert raised(decisions, "device_offline")[0].alert.values["cause"] == "offline"


def test_a_device_heard_in_the_same_batch_gets_no_refusal_note():
    registry = Registry(ROSTER)
    notes = CoverageNotes(registry.patient_for_device)
    from vigil.shell.contract.validation import check_vitals_payload
    message = vitals("wr-a", 1, T0, spo2_pct=140)
    for rejection in check_vitals_payload(message.topic, message.payload, received_at=T0,
                                          patient_for_device=registry.patient_for_device).rejections:
        notes.refused(rejection)
    assert notes.records() and not notes.records({message.topic})


def test_attack_a_replayed_backlog_is_not_judged_silent_unless_the_worker_says_so():
    """The worker ticks every patient it holds (coverage); silence stays the worker's call."""
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    run(pipeline, T0, 30, lambda k, now: vitals("wr-a", 1000 + k, now))
    later = T0 + 3600
    assert not raised([pipeline.tick(later, ["pt-a"], silent=set())], "device_offline")
    assert raised([pipeline.tick(later, ["pt-a"], silent={"pt-a"})], "device_offline")


def batch(device_id: str, seqs: list[int], now: float, bad: set[int]) -> Message:
    """One message of several samples, one per second up to `now`; samples in `bad` carry a
    renamed field (refused by the contract, the others kept)."""
    samples = []
    for i, seq in enumerate(seqs):
        t = now - (len(seqs) - 1 - i)
        sample = {"ts": datetime.fromtimestamp(t, timezone.utc).isoformat(), "seq": seq, "spo2_pct": 97.0,
                  "rr_per_min": 15.0}
        sample["heart" if seq in bad else "hr_bpm"] = 72.0
        samples.append(sample)
    return Message(f"vigil/v1/devices/{device_id}/vitals",
                   json.dumps({"v": 1, "device_id": device_id, "samples": samples}).encode(), now)


def test_a_flood_counts_from_the_message_whose_tail_was_refused():
    """A device that batches a minute per message: the fault starts inside a message (its good
    head, its refused tail). The count starts there, so the alert comes with the next fully
    refused message, not one message later."""
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    seq = 0
    out = []
    for minute in range(6):
        now = T0 + 60 * (minute + 1)
        seqs = list(range(seq + 1, seq + 5))
        seq += 4
        bad = set(seqs[2:]) if minute == 3 else set(seqs) if minute > 3 else set()
        out.append(pipeline.process([batch("wr-a", seqs, now, bad)]))
        out.append(pipeline.tick(now))
    [alert] = raised(out, "not_monitored")
    assert alert.t == T0 + 300, "the second message with refusals (the first refused in full)"
    assert alert.alert.values == {"cause": "rejected", "reason": "schema_invalid"}


def test_attack_a_device_whose_every_message_is_partly_refused_is_still_monitored():
    """Good samples in every message: the device is heard each minute; no flood, no alert (the
    dead letters and the device's errors topic say what is wrong)."""
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    out = []
    for minute in range(10):
        now = T0 + 60 * (minute + 1)
        seqs = list(range(4 * minute + 1, 4 * minute + 5))
        out.append(pipeline.process([batch("wr-a", seqs, now, {seqs[-1]})]))
        out.append(pipeline.tick(now))
    assert not raised(out, "not_monitored")
    assert pipeline.patients.get("pt-a").coverage.refused_messages == 1, "counted again from each message"
