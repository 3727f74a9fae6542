"""The ward workspace's API over the real HTTP app: the overview (scope, order, filters, audit),
the patient page (scope, what it carries), resolving with an outcome label, and its export."""

from __future__ import annotations

from vigil.shell.stores.outcome_labels import outcome_labels

T0 = 1_760_000_000.0  # the ward fixture's alerts were raised then
AS_ALICE, AS_BOB, AS_CAROL = ({"X-Test-Principal": n} for n in ("alice", "bob", "carol"))


async def test_the_overview_shows_one_row_per_patient_of_the_callers_wards_and_audits_them(ward):
    runtime, client = ward
    response = await client.get("/api/ward", headers=AS_ALICE)
    assert response.status == 200
    data = await response.json()
    assert sorted(r["patient_id"] for r in data["rows"]) == ["pt-a", "pt-b"]
    assert data["wards"] == ["w1"]
    for row in data["rows"]:
        assert row["incident"]["severity"] == "critical" and row["incident"]["state"] == "open"
        assert row["incident"]["alerts"][0]["kind"] == "hypoxaemia"
        assert row["monitoring"]["state"] == "unknown"  # nothing heard from either monitor yet
    last = list(runtime.alerting.audit.export())[-2:]
    assert {(r["action"], r["patient_id"]) for r in last} == {("read ward", "pt-a"), ("read ward", "pt-b")}
    assert (await (await client.get("/api/ward", headers=AS_CAROL)).json())["rows"] == []


async def test_filters_keep_only_unacknowledged_incidents_and_severities_at_least_the_one_asked(ward):
    _runtime, client = ward
    assert (await client.post("/api/incidents/b1/acknowledge", headers=AS_BOB)).status == 200
    rows = (await (await client.get("/api/ward?unacknowledged=1", headers=AS_ALICE)).json())["rows"]
    assert [r["patient_id"] for r in rows] == ["pt-a"]
    ordered = (await (await client.get("/api/ward?severity=high", headers=AS_ALICE)).json())["rows"]
    assert [r["patient_id"] for r in ordered] == ["pt-a", "pt-b"]  # open before acknowledged, same severity
    assert (await client.get("/api/ward?severity=dreadful", headers=AS_ALICE)).status == 400
    assert (await (await client.get("/api/ward?ward=w9", headers=AS_ALICE)).json())["rows"] == []


async def test_the_patient_page_carries_alerts_incidents_and_an_empty_named_replies_section(ward):
    runtime, client = ward
    page = await (await client.get("/api/patients/pt-a?span=7d", headers=AS_BOB)).json()
    assert page["span"] == "7d" and page["step"] == 3600
    assert set(page["series"]) == {"hr", "spo2", "rr", "temp", "sbp", "news2", "risk"}
    assert [a["alert_id"] for a in page["alerts"]] == ["a1"]
    assert [e["event"] for e in page["incidents"][0]["timeline"]] == ["opened"]
    assert page["patient_replies"] == [] and page["read_receipts"] == [] and "patient app" in page["replies_source"]
    assert page["grafana_url"] is None
    runtime.alerting.ward.grafana_url = "https://grafana.ward.example.org/"
    page = await (await client.get("/api/patients/pt-a?span=1h", headers=AS_BOB)).json()
    assert page["grafana_url"] == "https://grafana.ward.example.org/d/vigil-patient?var-patient=pt-a"
    assert list(runtime.alerting.audit.export())[-1]["action"] == "read patient"


def test_a_grafana_address_must_be_a_web_address():
    import pytest
    from pydantic import ValidationError

    from vigil.settings import VigilSettings

    assert VigilSettings(grafana_url="http://127.0.0.1:3000").grafana_url == "http://127.0.0.1:3000"
    with pytest.raises(ValidationError, match="VIGIL_GRAFANA_URL"):
        VigilSettings(grafana_url="javascript:alert(1)")


async def test_another_wards_patient_or_an_unknown_one_answers_404_and_the_probe_is_audited(ward):
    runtime, client = ward
    for patient in ("pt-a", "pt-nobody"):
        assert (await client.get(f"/api/patients/{patient}", headers=AS_CAROL)).status == 404
    probes = [(r["action"], r["patient_id"], r["status"]) for r in list(runtime.alerting.audit.export())[-2:]]
    assert probes == [("read patient", None, 404), ("read patient", None, 404)]
    assert (await client.get("/api/patients/pt-a?span=1y", headers=AS_ALICE)).status == 400


async def test_resolving_with_an_outcome_stores_the_label_and_the_export_gives_it_per_alert(ward):
    runtime, client = ward
    body = {"outcome": "false_alarm", "note": "probe slipped off"}
    assert (await client.post("/api/incidents/a1/acknowledge", json={"outcome": "artefact"}, headers=AS_BOB)).status == 400
    assert (await client.post("/api/incidents/a1/resolve", json={"outcome": "maybe"}, headers=AS_BOB)).status == 400
    response = await client.post("/api/incidents/a1/resolve", json=body, headers=AS_BOB)
    assert response.status == 200
    row = await response.json()
    assert (row["outcome"], row["resolution"], row["resolved_by"]) == ("false_alarm", "probe slipped off", "Dr Bob")
    trail = runtime.alerting.store.audit(row["incident_id"])
    assert trail[-1]["detail"]["outcome"] == "false_alarm"
    labels = list(outcome_labels(runtime.store.engine))
    assert [(r["alert_id"], r["incident_id"], r["outcome"], r["note"]) for r in labels] == [
        ("a1", row["incident_id"], "false_alarm", "probe slipped off")]
    assert list(outcome_labels(runtime.store.engine, patient_ids={"pt-b"})) == []


async def test_the_patient_apps_answers_and_read_receipts_show_on_the_patient_page(ward):
    """The patient app's tables (shell/stores/patient_tables.py): answers and read receipts reach the ward."""
    from sqlalchemy import text

    runtime, client = ward
    with runtime.store.engine.begin() as conn:
        conn.execute(text("INSERT INTO patient_replies (patient_id, incident_id, alert_id, answer, t, subject) "
                          "VALUES ('pt-a', 'in-1', 'a1', 'help', :t, 'patient:pt-a')"), {"t": T0 + 60})
        conn.execute(text("INSERT INTO message_reads VALUES ('pt-a', 'k-1', :t)"), {"t": T0 + 30})
    runtime.alerting.ward.clock = lambda: T0 + 600
    page = await (await client.get("/api/patients/pt-a?span=1h", headers=AS_ALICE)).json()
    assert [(r["answer"], r["alert_id"]) for r in page["patient_replies"]] == [("help", "a1")]
    assert [r["message_key"] for r in page["read_receipts"]] == ["k-1"]
    assert page["replies_source"].startswith("the patient app")
    other = await (await client.get("/api/patients/pt-b?span=1h", headers=AS_ALICE)).json()
    assert other["patient_replies"] == [] and other["read_receipts"] == []
