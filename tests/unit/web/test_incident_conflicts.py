"""Acting on a resolved incident answers 409 with the reason (it used to answer 200 and record
nothing); acknowledging twice is idempotent: 200, the first acknowledgement kept, no new audit row."""

from __future__ import annotations

import pytest

from vigil.shell.desk.desk import IncidentClosed

BODY = {"note": "seen at home"}
AS_BOB, AS_ALICE = {"X-Test-Principal": "bob"}, {"X-Test-Principal": "alice"}


async def test_acknowledging_or_resolving_a_resolved_incident_answers_409_with_the_reason(ward):
    runtime, client = ward
    assert (await client.post("/api/incidents/a1/resolve", json=BODY, headers=AS_BOB)).status == 200
    incident_id = runtime.alerting.desk.incident_id_for("a1")
    trail_before = runtime.alerting.store.audit(incident_id)
    for action in ("acknowledge", "resolve"):
        for ident in ("a1", incident_id):
            response = await client.post(f"/api/incidents/{ident}/{action}", json=BODY, headers=AS_BOB)
            assert response.status == 409
            assert "is resolved (seen at home)" in await response.text()
    assert runtime.alerting.store.audit(incident_id) == trail_before  # nothing was recorded on the incident
    outcomes = [(r["action"], r["outcome"], r["status"], r["patient_id"]) for r in runtime.alerting.audit.export()]
    assert outcomes[1:] == [("acknowledge", "conflict", 409, "pt-a"), ("acknowledge", "conflict", 409, "pt-a"),
                            ("resolve", "conflict", 409, "pt-a"), ("resolve", "conflict", 409, "pt-a")]


async def test_acknowledging_twice_is_idempotent_and_keeps_the_first(ward):
    runtime, client = ward
    first = await client.post("/api/incidents/b1/acknowledge", headers=AS_BOB)
    again = await client.post("/api/incidents/b1/acknowledge", headers=AS_ALICE)
    assert first.status == again.status == 200
    assert (await again.json())["acknowledged_by"] == "Dr Bob"
    incident_id = runtime.alerting.desk.incident_id_for("b1")
    assert [a["event"] for a in runtime.alerting.store.audit(incident_id)] == ["opened", "acknowledged"]
    assert (await client.post("/api/incidents/b1/resolve", json=BODY, headers=AS_BOB)).status == 200  # then resolving still works


def test_the_service_raises_incident_closed_for_the_api_to_answer(ward):
    runtime, _client = ward
    runtime.alerting.act("a1", "resolve", "dr.bob")
    with pytest.raises(IncidentClosed) as closed:
        runtime.alerting.act("a1", "acknowledge", "dr.bob")
    assert closed.value.row["state"] == "resolved"
