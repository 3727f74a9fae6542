"""The patient app over HTTP (the embedded runtime's real app): its static files are public and locked
down by a Content-Security-Policy; the patient's API shows their own day and takes their answer onto
the incident's timeline and the ward console's stream; the ward reads the answer back."""

from __future__ import annotations


PHONE = {"X-Test-Principal": "pt-a-phone"}
NURSE = {"X-Test-Principal": "alice"}


async def test_the_app_files_are_public_listed_and_locked_down(ward):
    _runtime, client = ward
    response = await client.get("/app", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/app/"
    for name, kind in (("", "text/html"), ("sw.js", "text/javascript"), ("manifest.webmanifest", "application/manifest+json")):
        response = await client.get(f"/app/{name}")
        assert response.status == 200 and response.content_type == kind
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    manifest = await (await client.get("/app/manifest.webmanifest")).json(content_type=None)
    assert manifest["start_url"] == "/app/" and manifest["display"] == "standalone"
    assert (await client.get("/app/console.py")).status == 404  # only the listed files
    assert (await client.get("/app/%2e%2e/console.html")).status in (401, 404)  # never a file outside the app
    assert (await client.post("/app/", json={})).status == 401  # public means GET only
    assert (await client.get("/api/patient/today")).status == 401


async def test_a_patients_day_and_answer_reach_the_incident_and_the_ward(ward):
    runtime, client = ward
    day = await (await client.get("/api/patient/today", headers=PHONE)).json()
    assert day["patient_id"] == "pt-a" and [a["kinds"] for a in day["alerts"]] == [["hypoxaemia"]]
    assert day["monitor"]["sending"] is False and day["monitor"]["advice"] == "charge_and_wear"  # nothing heard yet
    incident_id = day["alerts"][0]["incident_id"]
    other = runtime.alerting.desk.incident_id_for("b1")
    refused = await client.post("/api/patient/answers", headers=PHONE, json={"incident_id": other, "answer": "ok"})
    assert refused.status == 404
    answered = await client.post("/api/patient/answers", headers=PHONE, json={"incident_id": incident_id, "answer": "help"})
    assert answered.status == 200 and (await answered.json())["on_timeline"] is True
    assert "patient_help" in [row["event"] for row in runtime.alerting.store.audit(incident_id)]
    outbox = [row for row in runtime.alerting.store.outbox_rows(incident_id=incident_id) if row["event"] == "patient_help"]
    assert {row["recipient_id"] for row in outbox} == {"console"}  # no care team in this roster: the console hears
    thread = await (await client.get("/api/patients/pt-a/messages", headers=NURSE)).json()
    assert [(r["answer"], r["incident_id"]) for r in thread["replies"]] == [("help", incident_id)]
    assert (await client.get("/api/patient/today", headers=NURSE)).status == 403


async def test_an_answer_after_the_incident_was_resolved_still_reaches_the_console(ward):
    runtime, client = ward
    incident_id = runtime.alerting.desk.incident_id_for("a1")
    assert (await client.post(f"/api/incidents/{incident_id}/resolve", headers=NURSE, json={})).status == 200
    answered = await client.post("/api/patient/answers", headers=PHONE, json={"incident_id": incident_id, "answer": "help"})
    assert answered.status == 200 and (await answered.json())["on_timeline"] is False
    told = [e for e in runtime.alerting.hub.events("console") if e.payload.get("event") == "patient_help"]
    assert told and told[0].critical and told[0].payload["incident"]["patient_id"] == "pt-a"
    assert [r["answer"] for r in runtime.alerting.patient_app.replies("pt-a")] == ["help"]
