"""The HTTP attacker suite, against both runtimes: the embedded one (SQLite, in process) and the
notifier (PostgreSQL, `integration`). Two wards, one patient each (pt-alpha in w-a, pt-bravo in
w-b), every kind of caller, every endpoint. A read leaks when a caller who may not see pt-alpha
gets a 200 whose body names pt-alpha; the matrix of leaks is printed (target: 0), and each cell
is recorded as an attack. Then the attacks on the guards themselves: CSRF, forged actors,
another ward's incident, credentials in URLs, malformed credentials, brute force, stream tickets.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import create_engine, insert, text

from vigil.core.events import Alert
from vigil.core.identity import Principal, Role
from vigil.settings import VigilSettings
from vigil.shell.desk.desk import AlertChange
from vigil.shell.identity.sessions import Sessions
from vigil.shell.notify.channels.base import Delivery
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import WriteBatch
from vigil.shell.stores.tables import dead_letters

SERVICE_TOKEN = "service-token-for-the-attack-suite"
PASSWORD = "a long passphrase"
ROSTER = {"patients": [{"patient_id": "pt-alpha", "ward": "w-a"}, {"patient_id": "pt-bravo", "ward": "w-b"}]}
ACCOUNTS = [  # username, role, wards, patients, display name
    ("nurse.alpha", Role.NURSE, ["w-a"], [], "Nurse Alpha"),
    ("nurse.bravo", Role.NURSE, ["w-b"], [], "Nurse Bravo"),
    ("doc.alpha", Role.PHYSICIAN, ["w-a"], [], "Doctor Alpha"),
    ("admin.alpha", Role.WARD_ADMIN, ["w-a"], [], "Admin Alpha"),
    ("admin.bravo", Role.WARD_ADMIN, ["w-b"], [], "Admin Bravo"),
    ("carer.alpha", Role.CAREGIVER, [], ["pt-alpha"], "Carer Alpha"),
    ("carer.bravo", Role.CAREGIVER, [], ["pt-bravo"], "Carer Bravo"),
    ("patient.bravo", Role.PATIENT, [], ["pt-bravo"], "Patient Bravo"),
]
RUNTIMES = ["embedded", pytest.param("notifier", marks=pytest.mark.integration)]


class World:
    """One runtime's HTTP app with two patients' alerts, incidents, dead letters and push events."""

    def __init__(self, name: str, app, service, write, engine, close) -> None:  # noqa: ANN001
        self.name, self.app, self.service, self.write, self.engine, self.close = name, app, service, write, engine, close
        self.client: TestClient | None = None
        self.callers: dict[str, dict[str, str]] = {}
        self.incident: dict[str, str] = {}

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kw) -> tuple[int, str]:
        assert self.client is not None
        async with self.client.request(method, path, headers=headers or {}, **kw) as response:
            if response.content_type == "text/event-stream":
                return response.status, await read_stream(response)
            return response.status, await response.text()

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        async with self.client.post("/api/login", json={"username": username, "password": password}) as response:
            assert response.status == 200, await response.text()
            return session_headers(response, (await response.json())["csrf_token"])


def session_headers(response: aiohttp.ClientResponse, csrf: str) -> dict[str, str]:
    return {"Cookie": f"vigil_session={response.cookies['vigil_session'].value}", "X-CSRF-Token": csrf}


async def read_stream(response: aiohttp.ClientResponse, seconds: float = 0.5) -> str:
    """What a stream sends within `seconds` (its replay), then hang up."""
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(seconds):
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
    except TimeoutError:
        pass
    return b"".join(chunks).decode()


def seed(world: World) -> None:
    service, now = world.service, time.time()
    for patient, alert_id in (("pt-alpha", "al-alpha"), ("pt-bravo", "al-bravo")):
        alert = Alert(alert_id, patient, "hypoxaemia", "clinical", "critical", "SpO2 low", {"spo2_pct": 85}, now - 300, now)
        batch = WriteBatch()
        batch.alerts.append(AlertRow.of(alert))
        service.desk.take([AlertChange("raised", alert, now)], batch)
        world.write(batch)
        service.desk.committed()
        world.incident[patient] = service.desk.incident_id_for(alert_id)
        for inbox in ("console", f"patient:{patient}"):
            service.hub.publish(Delivery(f"k-{inbox}-{patient}", "app", inbox, inbox, "clinician", f"{patient} SpO2 85",
                                         f"{patient}: SpO2 85 %", {"incident": {"patient_id": patient}}))
    with world.engine.begin() as conn:
        for patient in ("pt-alpha", "pt-bravo", None):
            conn.execute(insert(dead_letters).values(received_at=now, topic="vigil/v1/devices/x/vitals", device_id="x",
                                                     patient_id=patient, reason="invalid", detail=f"of {patient}",
                                                     raw=f"raw of {patient}".encode()))


async def build(name: str, tmp_path) -> World:  # noqa: ANN001
    common = dict(models_enabled=False, api_token=SERVICE_TOKEN, login_max_failures=3,
                  login_max_failures_per_address=8, enrolment_code_ttl_s=600)
    registry = Registry(Roster.model_validate(ROSTER))
    if name == "embedded":
        from vigil.runtimes.embedded.runtime import EmbeddedRuntime

        runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, **common), registry)
        world = World(name, runtime.skeleton.app(), runtime.alerting, runtime.writer.write_and_wait,
                      runtime.store.engine, runtime.stop)
    else:
        from vigil.runtimes.notifier.notifier import Notifier

        url, drop = notifier_database()
        notifier = Notifier(VigilSettings(data_dir=tmp_path, database_url=url, **common), registry)

        async def close() -> None:
            await notifier.service.stop()
            notifier.store.close()
            drop()
        world = World(name, notifier.skeleton.app(), notifier.service, notifier.store.write, notifier.store.engine, close)
    seed(world)
    for username, role, wards, patients, display in ACCOUNTS:
        world.service.people.accounts.add(username, role, wards=wards, patients=patients, display_name=display,
                                          password=PASSWORD)
    return world


def notifier_database() -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL schema on the real server, and how to drop it."""
    if os.environ.get("VIGIL_INTEGRATION") != "1":
        pytest.skip("real servers not started here: tests/run.sh starts them with deploy/local/up")
    base, schema = os.environ["VIGIL_DATABASE_URL"], "a" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return f"{base}?options=-csearch_path%3D{schema}", drop


@pytest.fixture(params=RUNTIMES)
async def world(request, tmp_path):  # noqa: ANN001
    world = await build(request.param, tmp_path)
    async with TestClient(TestServer(world.app), cookie_jar=aiohttp.DummyCookieJar()) as client:
        world.client = client
        for username, *_ in ACCOUNTS:
            world.callers[username] = await world.login(username)
        world.callers.update(await special_callers(world))
        yield world
    await world.close()


async def special_callers(world: World) -> dict[str, dict[str, str]]:
    """The enrolled phone of pt-alpha, the service, and callers who should be nobody."""
    code = world.service.people.codes.issue("pt-alpha", "local:nurse.alpha")
    async with world.client.post("/api/enrol", json={"code": code}) as response:
        assert response.status == 200
        phone = session_headers(response, (await response.json())["csrf_token"])
    past = Sessions(world.engine, clock=lambda: time.time() - 86400)
    expired, _ = past.open(Principal("local:nurse.alpha", "Nurse Alpha", Role.NURSE, frozenset({"w-a"})),
                           username="nurse.alpha")
    return {
        "patient.alpha (enrolled phone)": phone,
        "service token": {"Authorization": f"Bearer {SERVICE_TOKEN}"},
        "anonymous": {},
        "expired session (nurse.alpha)": {"Cookie": f"vigil_session={expired}"},
        "forged session": {"Cookie": "vigil_session=" + "A" * 43},
        "forged bearer": {"Authorization": "Bearer not-the-service-token"},
    }


# endpoint -> the callers who may see pt-alpha there (everyone else must not)
READERS = {"patient.alpha (enrolled phone)", "carer.alpha", "nurse.alpha", "doc.alpha", "service token"}
CONSOLE = {"nurse.alpha", "doc.alpha"}
READS = {
    "GET /api/alerts": READERS,
    "GET /api/alerts/al-alpha": READERS,
    "GET /api/dead-letters": {"admin.alpha"},
    "GET /api/incidents": READERS,
    "GET /api/incidents/{alpha}": READERS,
    "GET /api/inbox?inbox=console": CONSOLE,
    "GET /api/inbox?inbox=patient:pt-alpha": {"patient.alpha (enrolled phone)"},
    "GET /api/stream?inbox=console": CONSOLE,
    "GET /api/stream?inbox=patient:pt-alpha": {"patient.alpha (enrolled phone)"},
    "GET /api/ward": CONSOLE,  # the ward workspace (issue 16): nurses and physicians of the ward only
    "GET /api/patients/pt-alpha?span=1h": CONSOLE,
}
NOT_IN_NOTIFIER = {"GET /api/alerts", "GET /api/alerts/al-alpha", "GET /api/dead-letters"}  # the embedded runtime's


async def test_no_endpoint_leaks_a_patient_to_the_wrong_caller(world: World, record_attack) -> None:
    leaks, matrix = 0, {}
    for endpoint, readers in READS.items():
        if world.name == "notifier" and endpoint in NOT_IN_NOTIFIER:
            continue
        method, path = endpoint.split(" ")
        path = path.replace("{alpha}", world.incident["pt-alpha"])
        for caller, headers in world.callers.items():
            status, body = await world.request(method, path, {**headers, "Last-Event-ID": "0"})
            shows = status == 200 and "pt-alpha" in body
            if caller in readers:
                assert shows, f"{caller} should see pt-alpha on {endpoint}: {status} {body[:200]}"
            else:
                leaks += shows
                record_attack("http", f"{endpoint} as {caller}", world.name, not shows)
            matrix[(endpoint, caller)] = "ok" if caller in readers else ("LEAK" if shows else f"{status}")
    print_matrix(world.name, matrix)
    assert leaks == 0


def print_matrix(runtime: str, matrix: dict[tuple[str, str], str]) -> None:
    endpoints = list(dict.fromkeys(e for e, _ in matrix))
    callers = list(dict.fromkeys(c for _, c in matrix))
    print(f"\n[{runtime}] pt-alpha's data, endpoint x caller ('ok': may see it; else the answer; LEAK: shown)")
    for caller in callers:
        print(f"  {caller[:30]:<30} " + " ".join(f"{matrix[(e, caller)]:>5}" for e in endpoints))
    print("  " + "; ".join(f"{i + 1}={e}" for i, e in enumerate(endpoints)))
    print(f"  leaks: {sum(v == 'LEAK' for v in matrix.values())}")


async def test_actions_record_the_logged_in_person_and_refuse_everyone_else(world: World, record_attack) -> None:
    alpha = world.incident["pt-alpha"]
    ack = f"/api/incidents/{alpha}/acknowledge"
    nurse = world.callers["nurse.alpha"]
    attempts = {
        "acknowledge without CSRF token": ({k: v for k, v in nurse.items() if k != "X-CSRF-Token"}, {}, 403),
        "acknowledge with another session's CSRF token": ({**nurse, "X-CSRF-Token": world.callers["doc.alpha"]["X-CSRF-Token"]}, {}, 403),
        "acknowledge with a forged actor": (nurse, {"actor": "mallory"}, 400),
        "acknowledge another ward's incident": (world.callers["nurse.bravo"], {}, 404),
        "acknowledge as the patient": (world.callers["patient.alpha (enrolled phone)"], {}, 403),
        "acknowledge as a caregiver": (world.callers["carer.alpha"], {}, 403),
        "acknowledge as a ward admin": (world.callers["admin.alpha"], {}, 403),
        "acknowledge with the service token": (world.callers["service token"], {}, 403),
        "acknowledge anonymously": ({}, {}, 401),
        "acknowledge with an expired session": (world.callers["expired session (nurse.alpha)"], {}, 401),
        "resolve another ward's incident": (world.callers["nurse.bravo"], {}, 404),
    }
    for attack, (headers, body, expected) in attempts.items():
        path = ack.replace("acknowledge", "resolve") if attack.startswith("resolve") else ack
        status, _ = await world.request("POST", path, headers, json=body)
        record_attack("http", attack, world.name, status == expected)
        assert status == expected, (attack, status)
    assert world.service.store.incident(alpha)["state"] == "open"  # none of them changed anything
    status, body = await world.request("POST", ack, nurse, json={"note": "on my way"})
    assert status == 200
    audit = world.service.store.audit(alpha)
    assert [(a["event"], a["actor"]) for a in audit if a["actor"] != "vigil"] == [("acknowledged", "Nurse Alpha")]
    assert "mallory" not in str(audit)


async def test_credentials_never_in_urls_and_malformed_ones_get_401(world: World, record_attack) -> None:
    nurse = world.callers["nurse.alpha"]
    cookie_value = nurse["Cookie"].split("=", 1)[1]
    in_url = {
        "service token in ?access_token=": ("/api/incidents?access_token=" + SERVICE_TOKEN, {}),
        "service token in ?token=": ("/api/incidents?token=" + SERVICE_TOKEN, {}),
        "session id in ?session=": ("/api/incidents?session=" + cookie_value, {}),
        "token in the stream URL": ("/api/stream?inbox=console&access_token=" + SERVICE_TOKEN, {}),
        "enrolment code in a query": ("/api/enrol?code=ABCDEFGHJK", {}),
    }
    for attack, (path, headers) in in_url.items():
        status, _ = await world.request("POST" if "enrol" in path else "GET", path, headers)
        record_attack("http", attack, world.name, status == 400)
        assert status == 400, (attack, status)
    malformed = {
        "non-ASCII bearer": {"Authorization": "Bearer t\u00f6ken-\u00e9\u00e9\u00e9\u00e9"},
        "empty bearer": {"Authorization": "Bearer "},
        "Basic instead of Bearer": {"Authorization": "Basic " + "YWRtaW46YWRtaW4="},
        "bearer of 10 kB": {"Authorization": "Bearer " + "a" * 10_000},
        "non-ASCII session cookie": {"Cookie": "vigil_session=s\u00e9ssion-" + "x" * 30},
        "session cookie of 4 kB": {"Cookie": "vigil_session=" + "a" * 4000},
        "session cookie with quotes": {"Cookie": 'vigil_session="' + "a" * 40 + '"'},
        "ticket on a non-stream path": {},
    }
    for attack, headers in malformed.items():
        path = "/api/incidents?ticket=whatever" if "ticket" in attack else "/api/incidents"
        try:
            status, _ = await world.request("GET", path, headers)
        except aiohttp.ClientError:  # the client refused to send it: then nobody got in either
            status = 401
        record_attack("http", attack, world.name, status in (400, 401))
        assert status in (400, 401), (attack, status)


async def test_login_and_enrolment_brute_force_is_rate_limited(world: World, record_attack) -> None:
    status, _ = await world.request("POST", "/api/login", data={"username": "doc.alpha", "password": PASSWORD})
    record_attack("http", "login by a cross-site HTML form (login CSRF)", world.name, status == 415)
    assert status == 415
    for _ in range(3):  # VIGIL_LOGIN_MAX_FAILURES=3 here
        status, _ = await world.request("POST", "/api/login", json={"username": "doc.alpha", "password": "guess"})
        assert status == 401
    status, _ = await world.request("POST", "/api/login", json={"username": "doc.alpha", "password": PASSWORD})
    record_attack("http", "login brute force, one username", world.name, status == 429)
    assert status == 429  # even the right password, until the window passes
    for i in range(8):  # spraying other usernames from the same address
        await world.request("POST", "/api/login", json={"username": f"user{i}", "password": "guess"})
    status, _ = await world.request("POST", "/api/login", json={"username": "nurse.bravo", "password": PASSWORD})
    record_attack("http", "password spraying, one address", world.name, status == 429)
    assert status == 429
    world.service.people.by_address._failures.clear()
    code = world.service.people.codes.issue("pt-bravo", "local:nurse.bravo")
    spent = [await world.request("POST", "/api/enrol", json={"code": code}) for _ in range(2)]
    record_attack("http", "enrolment code used twice", world.name, spent[1][0] == 401)
    assert [s for s, _ in spent] == [200, 401]
    for _ in range(8):
        await world.request("POST", "/api/enrol", json={"code": "AAAAAAAAAA"})
    fresh = world.service.people.codes.issue("pt-bravo", "local:nurse.bravo")
    status, _ = await world.request("POST", "/api/enrol", json={"code": fresh})
    record_attack("http", "enrolment code guessing", world.name, status == 429)
    assert status == 429


async def test_streams_need_a_session_or_a_fresh_single_use_ticket(world: World, record_attack) -> None:
    status, _ = await world.request("GET", "/api/stream?inbox=console")
    record_attack("http", "SSE without a session", world.name, status == 401)
    assert status == 401
    nurse = world.callers["nurse.alpha"]
    status, body = await world.request("POST", "/api/stream-ticket", nurse)
    ticket = json.loads(body)["ticket"]
    first, replay = await world.request("GET", f"/api/stream?inbox=console&ticket={ticket}", {"Last-Event-ID": "0"})
    assert first == 200 and "pt-alpha" in replay and "pt-bravo" not in replay
    again, _ = await world.request("GET", f"/api/stream?inbox=console&ticket={ticket}")
    record_attack("http", "SSE with a reused ticket", world.name, again == 401)
    assert again == 401
    status, body = await world.request("POST", "/api/stream-ticket", world.callers["patient.bravo"])
    theirs = json.loads(body)["ticket"]
    status, _ = await world.request("GET", f"/api/stream?inbox=patient:pt-alpha&ticket={theirs}")
    record_attack("http", "SSE ticket of another patient", world.name, status == 403)
    assert status == 403
    status, _ = await world.request("POST", "/api/stream-ticket", {k: v for k, v in nurse.items() if k != "X-CSRF-Token"})
    record_attack("http", "stream ticket without CSRF token", world.name, status == 403)
    assert status == 403


async def test_logout_disable_and_enrolment_codes_are_guarded(world: World, record_attack) -> None:
    doc = world.callers["doc.alpha"]
    assert (await world.request("POST", "/api/logout", doc))[0] == 200
    status, _ = await world.request("GET", "/api/incidents", doc)
    record_attack("http", "session reused after logout", world.name, status == 401)
    assert status == 401
    world.service.people.accounts.disable("carer.alpha")
    status, _ = await world.request("GET", "/api/incidents", world.callers["carer.alpha"])
    record_attack("http", "session of a disabled account", world.name, status == 401)
    assert status == 401
    attempts = {
        "enrolment code for another ward's patient": ("nurse.bravo", 404),
        "enrolment code issued by a patient": ("patient.alpha (enrolled phone)", 403),
        "enrolment code issued by a caregiver": ("carer.bravo", 403),
    }
    for attack, (caller, expected) in attempts.items():
        status, _ = await world.request("POST", "/api/enrolment-codes", world.callers[caller], json={"patient_id": "pt-alpha"})
        record_attack("http", attack, world.name, status == expected)
        assert status == expected, (attack, status)
    status, body = await world.request("POST", "/api/enrolment-codes", world.callers["nurse.alpha"],
                                       json={"patient_id": "pt-alpha"})
    assert status == 200 and len(json.loads(body)["code"]) == 10


async def test_raw_non_ascii_credential_bytes_get_401_not_500(world: World, record_attack) -> None:
    """Bytes no client library would send: straight onto the socket."""
    host, port = world.client.server.host, world.client.server.port
    for attack, header in {"raw Latin-1 bearer": b"Authorization: Bearer \xff\xfe\xfdtoken",
                           "raw UTF-8 session cookie": b"Cookie: vigil_session=\xc3\xa9" + b"a" * 40,
                           "raw control characters in a bearer": b"Authorization: Bearer abc\x01\x02def"}.items():
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /api/incidents HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        status = int(status_line.split()[1])
        record_attack("http", attack, world.name, status in (400, 401))
        assert status in (400, 401), (attack, status_line)
