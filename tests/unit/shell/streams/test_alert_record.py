"""`vigil.alerts` records: the alert is a typed model now, and its JSON is what it always was.

Kafka consumers (the notifier, the bench's watcher, anything downstream) and replayed records
must not see a difference: the reference below is the record as it was, with the alert a plain
dict, and every record must round-trip to the same bytes.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from vigil.core.events import Alert
from vigil.runtimes.notifier.notifier import changes_from
from vigil.shell.explain.samples import KINDS, sample_alert
from vigil.shell.streams.records import AlertRecord, AlertSnapshot

GOLDEN = (
    '{"v":1,"type":"alert","event":"raised","alert":{"alert_id":"al-5a60bc2bf3ebde6e7b15","patient_id":"pt-4817",'
    '"kind":"rising_risk","category":"clinical","severity":"high","rule":"deterioration risk >= 50% (NEWS2 >= 5 or a '
    'clinical event within the hour)","values":{"risk_pct":87},"onset_t":1800000825.0,"raised_t":1800001125.0,'
    '"news2":{"score":3,"band":"low-medium","parameters":{"rr":0,"spo2":3,"air_or_oxygen":0,"hr":0,"temp":0},'
    '"missing":["sbp","consciousness"],"partial":true},"contributors":[{"feature":"spo2_z","vital":"spo2","z":-7.1,'
    '"value":84.0,"baseline":96.3},{"feature":"rr_z","vital":"rr","z":4.1,"value":22.0,"baseline":15.6},'
    '{"feature":"hr_z","vital":"hr","z":2.9,"value":90.0,"baseline":72.3}],"model_version":"vigil-models-1+bb235a6e91",'
    '"cleared_t":null,"baselines":{"hr":72.3,"spo2":96},"trends":{"spo2":-1.5}},"t":1800001125.0,'
    '"patient_message":"p","clinician_summary":"c"}'
)


class RecordBefore(BaseModel):
    """The record before issue 10: the alert a plain dict (`Alert.as_dict()`)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    type: Literal["alert"] = "alert"
    event: Literal["raised", "severity_changed", "cleared"]
    alert: dict[str, Any]
    t: float | None = None
    patient_message: str | None = None
    clinician_summary: str | None = None


def core_alert(kind: str, **changes: Any) -> Alert:
    fields = Alert.__dataclass_fields__
    return Alert(**{**{k: v for k, v in sample_alert(kind).items() if k in fields}, **changes})


def alerts() -> list[Alert]:
    """Every kind, as raised, and with the numbers a dict kept as they were (ints, NaN, huge)."""
    plain = [core_alert(kind, baselines={"hr": 72.3}, trends={"hr": 6.2}) for kind in KINDS]
    odd = [core_alert(kind, onset_t=5, cleared_t=7, baselines={"hr": 74, "spo2": 97.5},
                      trends={"hr": float("nan"), "rr": 1e300}, values={**sample_alert(kind)["values"], "n": float("nan")})
           for kind in KINDS]
    return plain + odd


def test_the_record_is_byte_for_byte_what_it_was():
    alert = core_alert("rising_risk", baselines={"hr": 72.3, "spo2": 96}, trends={"spo2": -1.5})
    record = AlertRecord(event="raised", alert=AlertSnapshot.of(alert), t=1800001125.0, patient_message="p",
                         clinician_summary="c")
    assert record.model_dump_json() == GOLDEN
    assert RecordBefore(event="raised", alert=alert.as_dict(), t=1800001125.0, patient_message="p",
                        clinician_summary="c").model_dump_json() == GOLDEN


@pytest.mark.parametrize("event", ["raised", "severity_changed", "cleared"])
def test_every_alert_round_trips_to_the_same_bytes(event):
    for alert in alerts():
        before = RecordBefore(event=event, alert=alert.as_dict(), t=alert.raised_t, patient_message="Vigil: rest",
                              clinician_summary=None).model_dump_json()
        now = AlertRecord(event=event, alert=AlertSnapshot.of(alert), t=alert.raised_t, patient_message="Vigil: rest",
                          clinician_summary=None).model_dump_json()
        assert now == before, alert.kind
        assert AlertRecord.model_validate_json(before).model_dump_json() == before, alert.kind  # read, then written again


def test_a_read_record_gives_back_the_core_alert():
    alert = core_alert("hypoxaemia", baselines={"spo2": 96.0}, trends={"spo2": -2.0}, cleared_t=1800001500.0)
    json = AlertRecord(event="cleared", alert=AlertSnapshot.of(alert), t=1800001500.0).model_dump_json()
    assert AlertRecord.model_validate_json(json).alert.to_alert() == alert


def test_the_snapshot_is_taken_when_the_event_happens():
    alert = core_alert("fever")
    snapshot = AlertSnapshot.of(alert)
    alert.severity, alert.values["temp_c"] = "high", 40.0  # the core moves on
    assert snapshot.severity == "medium" and snapshot.values["temp_c"] == 38.8


def test_the_notifier_reads_records_as_before():
    """An alert record from an earlier writer without `t` takes its time from the alert; a
    record without a category is clinical; score records are skipped; a broken one is counted."""
    alert = core_alert("hypoxaemia")
    old = RecordBefore(event="raised", alert={k: v for k, v in alert.as_dict().items() if k != "category"}).model_dump_json()
    score = b'{"v":1,"type":"score","patient_id":"pt-4817","t":1.0,"news2":3,"news2_partial":false,"readings":4}'
    changes, unreadable = changes_from([old.encode(), score, b'{"v":1,"type":"alert","event":"raised"}'])
    assert unreadable == 1 and len(changes) == 1
    change = changes[0]
    assert change.event == "raised" and change.t == alert.raised_t and change.alert == alert
    assert change.key == (alert.alert_id, "raised", round(alert.raised_t, 3))
