"""The ward workspace's public surface: its pages and static files carry no data and no way to
reach any. Only the shipped files are served (no path from the request reaches the disk), a
path that climbs out of /static/ gets nothing, and every page forbids inline and foreign script."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry, Roster

ROSTER = Roster.model_validate({"patients": [{"patient_id": "pt-alpha", "ward": "w-a"}]})
CLIMBS = ["/static/../api/ward", "/static/%2e%2e/api/ward", "/static/ward/../../api/patients/pt-alpha",
          "/static/..%2f..%2fsettings.py", "/static/%2e%2e%2f%2e%2e%2fweb%2faccess.py", "/static/ward/ward.js%00.html",
          "/static/../../../../etc/passwd", "/static/vendor/uplot/../../../console.py", "/static//etc/passwd"]


@pytest.fixture
async def client(tmp_path):
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False), Registry(ROSTER))
    try:
        async with TestClient(TestServer(runtime.skeleton.app())) as client:
            yield client
    finally:
        await runtime.stop()


async def test_paths_that_climb_out_of_static_get_nothing(client, record_attack) -> None:
    for path in CLIMBS:
        response = await client.get(path, allow_redirects=False)
        body = await response.text()
        refused = response.status in (401, 404) and "pt-alpha" not in body and "import" not in body
        record_attack("http", f"ward static path {path}", "embedded", refused)
        assert refused, (path, response.status, body[:200])


async def test_pages_are_public_but_hold_no_data_and_forbid_inline_script(client, record_attack) -> None:
    for path in ("/ward", "/ward/patient?id=pt-alpha"):
        response = await client.get(path)
        body = await response.text()
        csp = response.headers.get("Content-Security-Policy", "")
        refused = "script-src 'self'" in csp and "unsafe-inline" not in csp and "pt-alpha" not in body
        refused = refused and "<script>" not in body and "http" not in body.split("<body>")[0].replace("http-equiv", "")
        record_attack("http", f"ward page {path}: inline or foreign script, data in the page", "embedded", refused)
        assert refused
    for path in ("/api/ward", "/api/patients/pt-alpha"):
        response = await client.get(path)
        record_attack("http", f"{path} without signing in", "embedded", response.status == 401)
        assert response.status == 401
