"""The patient app's API under attack, in both runtimes (the `world` of test_http_attacks.py: pt-alpha's
enrolled phone, pt-bravo in another ward, every kind of caller). A patient sees only their own day,
messages and alerts; another patient's message or incident answers 404; a nurse sees only her ward's
patients' messages; an enrolment code works once; every POST needs the session's CSRF token."""

from __future__ import annotations

import json

from test_http_attacks import World, world  # noqa: F401  (the fixture: both runtimes)

PHONE = "patient.alpha (enrolled phone)"


def without_csrf(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "X-CSRF-Token"}


async def test_a_patient_sees_only_their_own_data(world: World, record_attack) -> None:
    phone = world.callers[PHONE]
    bravo_message = world.service.patient_app.add_care_message("pt-bravo", "local:nurse.bravo", "Nurse Bravo",
                                                               "for bravo only", 1.0)
    status, body = await world.request("GET", "/api/patient/today", phone)
    assert status == 200 and json.loads(body)["patient_id"] == "pt-alpha" and "pt-bravo" not in body
    attempts = {
        "read receipt on another patient's message": ("POST", f"/api/patient/messages/{bravo_message['key']}/read", {}),
        "answer another patient's alert": ("POST", "/api/patient/answers",
                                           {"incident_id": world.incident["pt-bravo"], "answer": "ok"}),
        "another patient's messages (ward API)": ("GET", "/api/patients/pt-bravo/messages", None),
        "care message to another patient": ("POST", "/api/patients/pt-bravo/messages", {"body": "hi"}),
    }
    for attack, (method, path, payload) in attempts.items():
        status, body = await world.request(method, path, phone, json=payload) if payload is not None else \
            await world.request(method, path, phone)
        refused = status in (403, 404) and "for bravo only" not in body
        record_attack("patient-app", attack, world.name, refused)
        assert refused, (attack, status, body)
    status, body = await world.request("GET", "/api/patient/messages", phone)
    assert status == 200 and "for bravo only" not in body


async def test_the_patient_api_is_only_the_patients_and_the_wards_only_its_own(world: World, record_attack) -> None:
    cases = {
        ("nurse.alpha", "GET", "/api/patient/today"): 403,  # the patient API answers a patient's own session only
        ("anonymous", "GET", "/api/patient/today"): 401,
        ("nurse.bravo", "GET", "/api/patients/pt-alpha/messages"): 404,  # another ward's patient
        ("carer.bravo", "GET", "/api/patients/pt-alpha/messages"): 404,
        ("service token", "POST", "/api/patients/pt-alpha/messages"): 403,  # a service never acts
    }
    for (caller, method, path), expected in cases.items():
        status, _ = await world.request(method, path, world.callers[caller], json={"body": "x"} if method == "POST" else None)
        record_attack("patient-app", f"{caller} {method} {path}", world.name, status == expected)
        assert status == expected, (caller, path, status)
    status, body = await world.request("GET", "/api/patients/pt-alpha/messages", world.callers["nurse.alpha"])
    assert status == 200 and json.loads(body)["patient_id"] == "pt-alpha"


async def test_an_enrolment_code_works_once(world: World, record_attack) -> None:
    code = world.service.people.codes.issue("pt-alpha", "local:nurse.alpha")
    first, _ = await world.request("POST", "/api/enrol", json={"code": code})
    again, _ = await world.request("POST", "/api/enrol", json={"code": code})
    record_attack("patient-app", "enrolment code used twice", world.name, first == 200 and again == 401)
    assert (first, again) == (200, 401)


async def test_every_patient_app_post_needs_the_csrf_token(world: World, record_attack) -> None:
    phone = world.callers[PHONE]
    own = world.service.patient_app.add_care_message("pt-alpha", "local:nurse.alpha", "Nurse Alpha", "hello", 1.0)
    posts = {
        "/api/patient/answers": {"incident_id": world.incident["pt-alpha"], "answer": "help"},
        f"/api/patient/messages/{own['key']}/read": {},
        "/api/patient/push-subscriptions": {"endpoint": "https://push.example/x", "p256dh": "p", "auth": "a"},
    }
    for path, payload in posts.items():
        for label, headers in (("no token", without_csrf(phone)), ("wrong token", {**phone, "X-CSRF-Token": "x" * 43})):
            status, _ = await world.request("POST", path, headers, json=payload)
            record_attack("patient-app", f"CSRF ({label}) {path}", world.name, status == 403)
            assert status == 403, (path, label, status)
    nurse = world.callers["nurse.alpha"]
    status, _ = await world.request("POST", "/api/patients/pt-alpha/messages", without_csrf(nurse), json={"body": "x"})
    record_attack("patient-app", "CSRF (no token) care message", world.name, status == 403)
    assert status == 403
    assert world.service.patient_app.replies("pt-alpha") == []  # nothing got through
    status, _ = await world.request("POST", "/api/patient/answers", phone, json=posts["/api/patient/answers"])
    assert status == 200 and [r["answer"] for r in world.service.patient_app.replies("pt-alpha")] == ["help"]
