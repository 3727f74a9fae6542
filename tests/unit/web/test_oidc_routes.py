"""The login and callback routes against the stand-in provider, with a session double."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standins.oidc_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, REDIRECT_URI, IdpStandIn

from vigil.core.identity import Role
from vigil.shell.identity.claims import GroupMapping
from vigil.shell.identity.oidc import AuthorizationCodeFlow, OidcConfig, OidcProvider
from vigil.web.oidc_routes import BINDING_COOKIE, LoginAttempts, add_oidc_routes

MAPPING = GroupMapping.parse({"/roles/physician": "physician", "/roles/nurse": "nurse"})


def make_app(idp: IdpStandIn, sessions: list, *, secure_cookie: bool = False,
             attempts: LoginAttempts | None = None) -> web.Application:
    config = OidcConfig(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                        mapping=MAPPING)
    provider = OidcProvider(config, http=httpx.Client(transport=idp.transport()))
    flow = AuthorizationCodeFlow(provider, http=httpx.AsyncClient(transport=idp.async_transport()))

    async def open_session(_request, response, principal):
        sessions.append(principal)
        response.set_cookie("vigil_session", "s-" + principal.subject)

    app = web.Application()
    add_oidc_routes(app, flow, open_session, secure_cookie=secure_cookie, attempts=attempts)
    return app


@pytest.fixture
async def console():
    idp, sessions = IdpStandIn(), []
    async with TestClient(TestServer(make_app(idp, sessions))) as client:
        yield client, idp, sessions


async def start_login(client: TestClient, idp: IdpStandIn, code: str = "code-1", sub: str = "u-alice",
                      groups: tuple[str, ...] = ("/roles/physician", "/wards/ward-a")) -> dict[str, str]:
    """/auth/oidc/login, then what the provider would do: remember the code for this nonce and challenge."""
    answer = await client.get("/auth/oidc/login", allow_redirects=False)
    assert answer.status == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    idp.codes[code] = {"nonce": query["nonce"], "challenge": query["code_challenge"], "sub": sub, "groups": list(groups)}
    return query


async def test_login_redirects_with_pkce_state_and_nonce_and_no_verifier(console):
    client, idp, _ = console
    answer = await client.get("/auth/oidc/login", allow_redirects=False)
    location = answer.headers["Location"]
    assert location.startswith(idp.metadata()["authorization_endpoint"] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [REDIRECT_URI] and query["client_id"] == [CLIENT_ID]
    assert "openid" in query["scope"][0].split()
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert "code_verifier" not in location and CLIENT_SECRET not in location
    assert answer.headers["Cache-Control"] == "no-store"


async def test_the_binding_cookie_is_httponly_lax_short_lived_and_secure_by_default():
    async with TestClient(TestServer(make_app(IdpStandIn(), [], secure_cookie=True))) as client:
        answer = await client.get("/auth/oidc/login", allow_redirects=False)
        cookie = answer.cookies[BINDING_COOKIE]
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
        assert cookie["path"] == "/auth/oidc" and int(cookie["max-age"]) <= 600


async def test_a_good_callback_opens_a_session_for_the_mapped_principal(console):
    client, idp, sessions = console
    query = await start_login(client, idp)
    answer = await client.get("/auth/oidc/callback", params={"state": query["state"], "code": "code-1"},
                              allow_redirects=False)
    assert answer.status == 302 and answer.headers["Location"] == "/"
    [principal] = sessions
    assert (principal.subject, principal.role, principal.wards) == ("oidc:u-alice", Role.PHYSICIAN,
                                                                    frozenset({"ward-a"}))
    assert answer.cookies["vigil_session"].value == "s-oidc:u-alice"


async def test_an_unmapped_user_gets_403_and_no_session(console):
    client, idp, sessions = console
    query = await start_login(client, idp, groups=("/visitors",))
    answer = await client.get("/auth/oidc/callback", params={"state": query["state"], "code": "code-1"})
    assert answer.status == 403 and "no group" in (await answer.json())["error"]
    assert sessions == []


@pytest.mark.parametrize("params", [{}, {"state": "s"}, {"code": "c"}, {"state": "é", "code": "c"},
                                    {"state": "s" * 3000, "code": "c"}, {"state": "s", "code": "c\x00"}])
async def test_malformed_callbacks_answer_400(console, params):
    client, _, sessions = console
    answer = await client.get("/auth/oidc/callback", params=params)
    assert answer.status == 400 and "error" in await answer.json()
    assert sessions == []


async def test_an_idp_error_is_a_400_that_does_not_reflect_its_text(console):
    client, _, _ = console
    answer = await client.get("/auth/oidc/callback", params={
        "error": "access_denied", "error_description": "<script>alert(1)</script>", "state": "x"})
    text = await answer.text()
    assert answer.status == 400 and "access_denied" in text and "script" not in text
    answer = await client.get("/auth/oidc/callback", params={"error": "<img src=x>"})
    assert answer.status == 400 and "img" not in await answer.text()


async def test_the_provider_refusing_the_code_is_a_400_with_its_error_code_only(console):
    client, idp, sessions = console
    query = await start_login(client, idp)
    answer = await client.get("/auth/oidc/callback", params={"state": query["state"], "code": "never-issued"})
    body = await answer.json()
    assert answer.status == 400 and "invalid_grant" in body["error"] and "<b>" not in body["error"]
    assert sessions == []


async def test_an_unreachable_provider_is_a_502_not_a_500():
    def down(_request):
        raise httpx.ConnectError("refused")

    config = OidcConfig(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI)
    provider = OidcProvider(config, http=httpx.Client(transport=httpx.MockTransport(down)))
    app = web.Application()
    add_oidc_routes(app, AuthorizationCodeFlow(provider), lambda *a: None, secure_cookie=False)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/auth/oidc/login", allow_redirects=False)
        assert answer.status == 502 and "unreachable" in (await answer.json())["error"]


def test_login_attempts_expire_and_are_bounded():
    from vigil.shell.identity.oidc import LoginAttempt

    attempts = LoginAttempts(ttl_s=60, max_pending=3)
    for i in range(5):
        attempts.put(LoginAttempt(f"s{i}", "n", "v", "b", started_at=time.monotonic() + i))
    assert attempts.take("s0") is None and attempts.take("s1") is None  # pushed out by the bound
    assert attempts.take("s4") is not None and attempts.take("s4") is None  # single use
    attempts.put(LoginAttempt("old", "n", "v", "b", started_at=0.0))
    assert attempts.take("old") is None  # expired


async def test_a_token_endpoint_answering_garbage_is_a_400_not_a_500():
    idp, sessions = IdpStandIn(), []
    original = idp._token
    idp._token = lambda request: httpx.Response(200, content=b"<html>not json", headers={"content-type": "text/html"})
    async with TestClient(TestServer(make_app(idp, sessions))) as client:
        query = await start_login(client, idp)
        answer = await client.get("/auth/oidc/callback", params={"state": query["state"], "code": "code-1"})
        assert answer.status == 400 and "no ID token" in (await answer.json())["error"]
    idp._token = original
