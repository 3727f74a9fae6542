"""A worker's own replay is not the device's fault (issue 13, found by
tests/integration/test_scaled_coverage.py; fixed in core.coverage: a refusal received before the
newest message already heard is a replay and counts for nothing).

Delivery on the Kafka path is at least once: after a rebalance or a restart, a worker reads again
the records it had applied but not yet committed, with the patient's state restored from the
changelog (already past them). Every sample of such a record is a `duplicate_seq`, and
`Pipeline._observe` hands that to the patient's coverage as a refusal, exactly as if the device
had sent it: two replayed records are a "flood" of kind `sequence`, dated from their original
receipt, so a check `rejected_after_s` after that receipt (at once, for a replay older than that)
raises `not_monitored` (cause `rejected`, reason `duplicate_seq`). A device that keeps sending clears it with its next message; one that has just gone quiet
keeps the wrong cause (`rejected` outranks `silent`): the ward is told its sample numbers are out
of order, the patient is never told to check the monitor, and `device_offline` never comes.
"""

from vigil.core.reading import Reading
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import NOTHING_STORED, Message, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.streams.records import ReadingsRecord

ROSTER = Roster.model_validate({"patients": [{"patient_id": "pt-a", "devices": [{"device_id": "wr-a"}]}]})
T0 = 1_800_000_000.0
TOPIC = "vigil/v1/devices/wr-a/vitals"


def record(seq: int, t: float) -> ReadingsRecord:
    """What a gateway forwards for one message of two samples, received at `t`."""
    readings = [Reading("pt-a", "wr-a", t - 1 + k, seq + k, hr=72.0 + k, spo2=97.0, rr=15.0, temp=36.7, accel=0.02,
                        contact=True, battery=80.0) for k in range(2)]
    return ReadingsRecord.of(readings, TOPIC, t)


def apply(pipeline: Pipeline, records: list[ReadingsRecord]):
    return pipeline.process_readings([(r.to_readings(), Message(r.topic, b"", r.received_at)) for r in records])


def raised(decisions, kind: str) -> list:
    return [c.alert for d in decisions for c in d.alert_changes if c.event == "raised" and c.alert.kind == kind]


def test_a_replay_of_the_last_records_after_a_rebalance_is_not_a_refusal_flood():
    pipeline = Pipeline(Registry(ROSTER), Metrics(), NOTHING_STORED)
    sent = [record(1 + 2 * k, T0 + 2 * k) for k in range(10)]  # a message every 2 s, for 20 s
    decisions = [apply(pipeline, sent)]
    # The worker had applied the last two records but not committed them: after the rebalance it
    # reads them again (the state restored from the changelog is already past them). The device
    # went quiet after its last message.
    replayed_at = T0 + 21
    decisions.append(apply(pipeline, sent[-2:]))
    decisions += [pipeline.tick(replayed_at + k, ["pt-a"], silent=set()) for k in range(60)]  # past the 30 s bound
    assert raised(decisions, "not_monitored") == [], [a.values for a in raised(decisions, "not_monitored")]
    # Later the worker's clock finds the wearable silent: the cause is silence, told to the patient.
    late = T0 + 20 + 15 * 60 + 5
    decisions.append(pipeline.tick(late, ["pt-a"], silent={"pt-a"}))
    assert [a.values["cause"] for a in raised(decisions, "device_offline")] == ["silent"]
