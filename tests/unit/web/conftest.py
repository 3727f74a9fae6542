"""A small ward behind the embedded runtime's real HTTP app (not started: no broker), with two
patients' alerts and incidents stored, and a stand-in for the authentication middleware: the
`X-Test-Principal` header names one of PRINCIPALS, turned into a bearer token that a test
verifier (through the real authentication middleware's BearerVerifier seam) maps to it."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vigil.core.events import Alert
from vigil.core.identity import Principal, Role
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.desk.desk import AlertChange
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.rows import AlertRow
from vigil.shell.stores.sql import WriteBatch

T0 = 1_760_000_000.0
PRINCIPALS = {
    "alice": Principal("local:alice", "Alice Nurse", Role.NURSE, wards=frozenset({"w1"})),
    "bob": Principal("local:bob", "Dr Bob", Role.PHYSICIAN, wards=frozenset({"w1"})),
    "carol": Principal("local:carol", "Carol Nurse", Role.NURSE, wards=frozenset({"w2"})),  # another ward's
    "pt-a-phone": Principal("patient:pt-a", "pt-a", Role.PATIENT, patients=frozenset({"pt-a"})),
}
ROSTER = Roster.model_validate({"patients": [
    {"patient_id": "pt-a", "ward": "w1", "devices": [{"device_id": "wr-a"}]},
    {"patient_id": "pt-b", "ward": "w1", "devices": [{"device_id": "wr-b"}]},
]})


def alert(alert_id: str, patient_id: str) -> Alert:
    return Alert(alert_id=alert_id, patient_id=patient_id, kind="hypoxaemia", category="clinical", severity="critical",
                 rule="SpO2 < 88", values={"spo2_pct": 85}, onset_t=T0 - 300, raised_t=T0, news2=None, contributors=[],
                 model_version=None, cleared_t=None, baselines={}, trends={})


class TestTokens:
    """A BearerVerifier for the tests: the token "test-<name>" is PRINCIPALS[name]."""

    def verify(self, token: str) -> Principal | None:
        return PRINCIPALS.get(token.removeprefix("test-")) if token.startswith("test-") else None


@web.middleware
async def test_principal(request: web.Request, handler):
    name = request.headers.get("X-Test-Principal")
    if name in PRINCIPALS:
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer test-{name}"})
    return await handler(request)


@pytest.fixture
async def ward(tmp_path):
    """(runtime, client): alerts a1 (pt-a) and b1 (pt-b), each in its own open incident."""
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False), Registry(ROSTER))
    batch = WriteBatch()
    changes = []
    for alert_id, patient in (("a1", "pt-a"), ("b1", "pt-b")):
        raised = alert(alert_id, patient)
        batch.alerts.append(AlertRow.of(raised))
        changes.append(AlertChange("raised", raised, T0))
    runtime.alerting.desk.take(changes, batch)
    runtime.store.write(batch)
    runtime.alerting.desk.committed()
    runtime.alerting.bearer_verifiers.append(TestTokens())
    app = runtime.skeleton.app()
    app.middlewares.insert(0, test_principal)
    try:
        async with TestClient(TestServer(app)) as client:
            yield runtime, client
    finally:
        await runtime.stop()
