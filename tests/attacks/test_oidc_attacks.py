"""The attacker's view of single sign-on and service tokens: every forgery and replay must be refused.

Without servers the provider is the stand-in (tests/standins/oidc_provider.py, keys generated here);
the `integration` cases use the real Keycloak that deploy/local starts. Each attack prints a row
(surface, attack, refused) at the end of the run (-rA or -s shows it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from standins.oidc_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, REDIRECT_URI, IdpStandIn, rsa_key

from vigil.shell.identity.claims import GroupMapping
from vigil.shell.identity.oidc import AuthorizationCodeFlow, OidcConfig, OidcProvider, ServiceTokenVerifier
from vigil.web.oidc_routes import BINDING_COOKIE, add_oidc_routes

MAPPING = GroupMapping.parse({"/roles/physician": "physician", "/roles/nurse": "nurse"})
RESULTS: list[tuple[str, str, bool]] = []


def record(attack: str, refused: bool, surface: str = "oidc") -> None:
    RESULTS.append((surface, attack, refused))
    assert refused, f"attack got through: {attack}"


@pytest.fixture(scope="module", autouse=True)
def attack_table():
    yield
    print("\n" + "\n".join(f"{s:<12} {'refused' if r else 'GOT THROUGH':<12} {a}" for s, a, r in RESULTS))


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def idp() -> IdpStandIn:
    return IdpStandIn()


def config(**extra) -> OidcConfig:
    return OidcConfig(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                      mapping=MAPPING, service_clients=frozenset({"vigil-fhir"}), **extra)


def service_verifier(idp: IdpStandIn) -> ServiceTokenVerifier:
    return ServiceTokenVerifier(OidcProvider(config(), http=httpx.Client(transport=idp.transport())))


# -- forged bearer tokens ---------------------------------------------------------------------------
def hs256_with_public_key(idp: IdpStandIn) -> str:
    pem = rsa_key("rs1").public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'rs1'})}.{b64(idp.service_claims())}"
    mac = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=")
    return f"{signing_input}.{mac.decode()}"


FORGERIES = {
    "alg none": lambda idp: f"{b64({'alg': 'none', 'kid': 'rs1'})}.{b64(idp.service_claims())}.",
    "HS256 keyed with the provider's public key": hs256_with_public_key,
    "attacker's own RSA key under an unknown kid": lambda idp: idp.mint(idp.service_claims(), kid="rs-evil"),
    "attacker's own key under the provider's kid": lambda idp: idp.mint(idp.service_claims(), kid="rs1",
                                                                        key=rsa_key("rs-evil")),
    "payload swapped under a genuine signature": lambda idp: ".".join(
        [idp.mint(idp.claims()).split(".")[0], b64(idp.service_claims()), idp.mint(idp.claims()).split(".")[2]]),
    "another issuer": lambda idp: idp.mint(idp.service_claims(iss="https://evil.test/realms/vigil")),
    "another audience": lambda idp: idp.mint(idp.service_claims(aud="account")),
    "expired an hour ago": lambda idp: idp.mint(idp.service_claims(exp=int(time.time()) - 3600)),
    "a person's token (azp vigil-web) as a service": lambda idp: idp.mint(idp.service_claims(azp="vigil-web")),
    "an ID token as a bearer token": lambda idp: idp.mint(idp.claims(aud=["vigil-api"], azp="vigil-fhir")),
    "a client without the service role": lambda idp: idp.mint(idp.service_claims(realm_access={"roles": []})),
    "no expiry": lambda idp: idp.mint(idp.service_claims(exp=None)),
    "non-ASCII garbage": lambda idp: "é.é.é",
}


@pytest.mark.parametrize("attack", list(FORGERIES))
def test_forged_service_tokens_are_refused(idp, attack):
    token = FORGERIES[attack](idp)
    record(f"service bearer: {attack}", service_verifier(idp).verify(token) is None)


def test_a_flood_of_unknown_key_ids_does_not_hammer_the_provider(idp):
    verifier = service_verifier(idp)
    for i in range(100):
        verifier.verify(idp.mint(idp.service_claims(), kid=f"rs-evil-{i % 3}"))
    record("100 tokens with unknown kids: JWKS refetches bounded", idp.jwks_fetches <= 1)


# -- the login flow ----------------------------------------------------------------------------------
@pytest.fixture
async def console(idp):
    sessions: list = []
    provider = OidcProvider(config(), http=httpx.Client(transport=idp.transport()))
    flow = AuthorizationCodeFlow(provider, http=httpx.AsyncClient(transport=idp.async_transport()))
    app = web.Application()
    add_oidc_routes(app, flow, lambda _req, _resp, principal: sessions.append(principal), secure_cookie=False)
    async with TestClient(TestServer(app)) as client:
        yield client, sessions


async def begin(client: TestClient, idp: IdpStandIn, code: str, groups=("/roles/physician", "/wards/ward-a")) -> str:
    answer = await client.get("/auth/oidc/login", allow_redirects=False)
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    idp.codes[code] = {"nonce": query["nonce"], "challenge": query["code_challenge"], "sub": "u-1",
                       "groups": list(groups)}
    return query["state"]


async def test_login_csrf_a_victim_cannot_be_logged_in_as_the_attacker(console, idp):
    """The attacker starts a login, then feeds their own callback URL to a victim's browser."""
    client, sessions = console
    state = await begin(client, idp, "attacker-code")
    client.session.cookie_jar.clear()  # the victim's browser never started this login
    answer = await client.get("/auth/oidc/callback", params={"state": state, "code": "attacker-code"})
    record("login CSRF: callback from another browser", answer.status == 400 and not sessions)


async def test_a_replayed_callback_is_refused(console, idp):
    client, sessions = console
    state = await begin(client, idp, "c1")
    first = await client.get("/auth/oidc/callback", params={"state": state, "code": "c1"}, allow_redirects=False)
    assert first.status == 302
    binding = first.cookies.get(BINDING_COOKIE)
    again = await client.get("/auth/oidc/callback", params={"state": state, "code": "c1"})
    record("replayed callback (same state and code)", again.status == 400 and len(sessions) == 1 and
           (binding is None or binding.value == ""))


async def test_a_stolen_code_with_a_fresh_state_fails_pkce(console, idp):
    """A code intercepted from someone else's redirect, replayed under the attacker's own login."""
    client, sessions = console
    await begin(client, idp, "victim-code")  # the victim's login: its challenge is bound to the code
    state = await begin(client, idp, "unused")  # the attacker's own login (their own verifier)
    answer = await client.get("/auth/oidc/callback", params={"state": state, "code": "victim-code"})
    record("stolen code under another login's PKCE verifier", answer.status == 400 and not sessions)


async def test_an_idp_error_cannot_inject_markup(console):
    client, _ = console
    answer = await client.get("/auth/oidc/callback", params={"error": "access_denied",
                                                             "error_description": "<script>x</script>"})
    record("IdP error text reflected", answer.status == 400 and "<script>" not in await answer.text())


async def test_an_unmapped_user_gets_no_role(console, idp):
    client, sessions = console
    state = await begin(client, idp, "c2", groups=("/visitors", "/wards/ward-a"))
    answer = await client.get("/auth/oidc/callback", params={"state": state, "code": "c2"})
    record("user in no mapped group", answer.status == 403 and not sessions)


# -- against the real Keycloak -------------------------------------------------------------------------
REALM = json.loads((Path(__file__).parents[2] / "deploy/local/keycloak/vigil-realm.json").read_text())


@pytest.fixture
def keycloak() -> OidcConfig:
    if os.environ.get("VIGIL_INTEGRATION") != "1" or not os.environ.get("VIGIL_OIDC_ISSUER"):
        pytest.skip("Keycloak not started: deploy/local/up keycloak")
    from vigil.settings import VigilSettings

    return OidcConfig.from_settings(VigilSettings())


def real_token(cfg: OidcConfig, realm: str, form: dict, auth: tuple[str, str] | None = None) -> str:
    base = cfg.issuer.rsplit("/realms/", 1)[0]
    answer = httpx.post(f"{base}/realms/{realm}/protocol/openid-connect/token", data=form, auth=auth)
    assert answer.status_code == 200, answer.status_code
    return answer.json()["access_token"]


@pytest.mark.integration
def test_keycloak_master_realm_and_tampered_tokens_are_refused(keycloak):
    verifier = ServiceTokenVerifier(OidcProvider(keycloak))
    master = real_token(keycloak, "master", {"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                                             "password": os.environ["VIGIL_KEYCLOAK_ADMIN_PASSWORD"]})
    record("Keycloak master-realm admin token", verifier.verify(master) is None, "oidc-real")
    fhir_secret = next(c["secret"] for c in REALM["clients"] if c["clientId"] == "vigil-fhir")
    genuine = real_token(keycloak, "vigil", {"grant_type": "client_credentials"}, ("vigil-fhir", fhir_secret))
    assert verifier.verify(genuine) is not None
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["azp"] = "vigil-admin"
    record("Keycloak token with a rewritten azp", verifier.verify(f"{header}.{b64(claims)}.{signature}") is None,
           "oidc-real")
    record("Keycloak token with a wrong client secret", httpx.post(
        f"{keycloak.issuer}/protocol/openid-connect/token", data={"grant_type": "client_credentials"},
        auth=("vigil-fhir", "guessed")).status_code == 401, "oidc-real")
