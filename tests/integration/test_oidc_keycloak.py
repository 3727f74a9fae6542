"""Single sign-on and service accounts against the real Keycloak that deploy/local starts.

The realm is deploy/local/keycloak/vigil-realm.json (users, groups, clients and their dev secrets)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standins.keycloak_login import callback_path, keycloak_login

from vigil.core.identity import Principal, Role
from vigil.settings import VigilSettings
from vigil.shell.identity.oidc import AuthorizationCodeFlow, OidcConfig, OidcProvider, ServiceTokenVerifier
from vigil.web.oidc_routes import add_oidc_routes

pytestmark = pytest.mark.integration
REALM = json.loads((Path(__file__).parents[2] / "deploy/local/keycloak/vigil-realm.json").read_text())


def secret(client_id: str) -> str:
    return next(c["secret"] for c in REALM["clients"] if c["clientId"] == client_id)


def password(username: str) -> str:
    user = next(u for u in REALM["users"] if u["username"] == username)
    return user["credentials"][0]["value"]


@pytest.fixture
def config(servers) -> OidcConfig:
    if "VIGIL_OIDC_ISSUER" not in servers:
        pytest.skip("Keycloak not started: deploy/local/up keycloak")
    cfg = OidcConfig.from_settings(VigilSettings())
    assert cfg is not None
    return cfg


@pytest.fixture
async def console(config):
    """The login routes on a test server, with a session double that records who logged in."""
    sessions: list[Principal] = []

    async def open_session(_request, response, principal):
        sessions.append(principal)
        response.headers["X-Test-Subject"] = principal.subject

    app = web.Application()
    add_oidc_routes(app, AuthorizationCodeFlow(OidcProvider(config)), open_session, secure_cookie=False)
    async with TestClient(TestServer(app)) as client:
        yield client, sessions


async def sso_login(client: TestClient, username: str) -> tuple[str, str]:
    """Login as `username` through Keycloak's form; the callback query and the app's answer."""
    start = await client.get("/auth/oidc/login", allow_redirects=False)
    assert start.status == 302
    location = await keycloak_login(start.headers["Location"], username, password(username))
    return callback_path(location), location


@pytest.mark.parametrize(("username", "role", "wards"), [
    ("alice", Role.PHYSICIAN, {"ward-a"}), ("nina", Role.NURSE, {"ward-a", "ward-b"}),
    ("walter", Role.WARD_ADMIN, {"ward-b"})])
async def test_login_maps_keycloak_groups_to_role_and_wards(console, username, role, wards):
    client, sessions = console
    callback, _ = await sso_login(client, username)
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 302, await answer.text()
    assert answer.headers["Location"] == "/"
    [principal] = sessions
    assert (principal.name, principal.role, principal.wards, principal.via) == (username, role, frozenset(wards), "oidc")
    assert principal.subject.startswith("oidc:") and answer.headers["X-Test-Subject"] == principal.subject


async def test_a_user_in_no_mapped_group_is_refused(console):
    client, sessions = console
    callback, _ = await sso_login(client, "mallory")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 403
    assert "no group" in (await answer.json())["error"]
    assert sessions == []


async def test_a_replayed_callback_is_refused(console):
    client, sessions = console
    callback, _ = await sso_login(client, "alice")
    assert (await client.get(callback, allow_redirects=False)).status == 302
    again = await client.get(callback, allow_redirects=False)
    assert again.status == 400 and "already used" in (await again.json())["error"]
    assert len(sessions) == 1


def client_credentials(config: OidcConfig, realm: str, client_id: str, client_secret: str) -> str:
    base = config.issuer.rsplit("/realms/", 1)[0]
    answer = httpx.post(f"{base}/realms/{realm}/protocol/openid-connect/token",
                        data={"grant_type": "client_credentials"}, auth=(client_id, client_secret))
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_client_credentials_make_a_service_principal(config):
    token = client_credentials(config, "vigil", "vigil-fhir", secret("vigil-fhir"))
    principal = ServiceTokenVerifier(OidcProvider(config)).verify(token)
    assert principal == Principal(subject="service:vigil-fhir", name="vigil-fhir", role=Role.SERVICE, via="bearer")


def test_a_token_from_the_master_realm_is_refused(config, servers):
    base = config.issuer.rsplit("/realms/", 1)[0]
    answer = httpx.post(f"{base}/realms/master/protocol/openid-connect/token",
                        data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                              "password": servers["VIGIL_KEYCLOAK_ADMIN_PASSWORD"]})
    assert answer.status_code == 200
    master_token = answer.json()["access_token"]
    provider = OidcProvider(config)
    assert ServiceTokenVerifier(provider).verify(master_token) is None
    with pytest.raises(Exception, match="does not publish|another issuer"):
        provider.verify_id_token(master_token, "any")


async def test_keycloak_refuses_a_code_exchanged_twice(config):
    """The flow itself, without the routes: the second exchange of the same code is refused."""
    from vigil.shell.identity.oidc import OidcRefused

    flow = AuthorizationCodeFlow(OidcProvider(config))
    url, attempt = await flow.begin()
    location = await keycloak_login(url, "nina", password("nina"))
    code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
    assert (await flow.finish(code, attempt)).role is Role.NURSE
    with pytest.raises(OidcRefused, match="invalid_grant"):
        await flow.finish(code, attempt)


@pytest.fixture
async def ward_app(config, tmp_path):
    """The embedded runtime's real HTTP app, single sign-on configured from the environment."""
    from vigil.runtimes.embedded.runtime import EmbeddedRuntime
    from vigil.shell.registry import Registry, Roster

    roster = Roster.model_validate({"patients": [{"patient_id": "pt-sso", "ward": "ward-a", "devices": []}]})
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path, models_enabled=False, database_url=None,
                                            cookie_secure=False), Registry(roster))
    assert runtime.alerting.oidc_flow is not None, "VIGIL_OIDC_* from deploy/local's env configure the login"
    try:
        async with TestClient(TestServer(runtime.skeleton.app())) as client:
            yield client
    finally:
        await runtime.stop()


async def test_single_sign_on_through_the_ward_console_opens_a_vigil_session(ward_app):
    client = ward_app
    assert (await client.get("/api/me")).status == 401
    callback, _ = await sso_login(client, "alice")
    answer = await client.get(callback, allow_redirects=False)
    assert answer.status == 302 and answer.headers["Location"] == "/console", await answer.text()
    cookie = answer.cookies["vigil_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    me = await client.get("/api/me", headers={"Cookie": f"vigil_session={cookie.value}"})
    assert me.status == 200
    body = await me.json()
    assert (body["name"], body["role"], body["wards"], body["via"]) == ("alice", "physician", ["ward-a"], "oidc")


async def test_an_integration_reads_with_its_client_credentials_token_and_cannot_act(ward_app, config, servers):
    client = ward_app
    token = client_credentials(config, "vigil", "vigil-fhir", secret("vigil-fhir"))
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/incidents", headers=bearer)).status == 200
    assert (await client.post("/api/incidents/in-1/acknowledge", headers=bearer)).status == 403
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await client.get("/api/incidents", headers={"Authorization": f"Bearer {tampered}"})).status == 401
