"""Token verification against a stand-in provider whose keys are generated here: every forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from standins.oidc_provider import CLIENT_ID, ISSUER, IdpStandIn, rsa_key

from vigil.core.identity import Role
from vigil.shell.identity.claims import GroupMapping
from vigil.shell.identity.oidc import OidcConfig, OidcProvider, OidcRefused, ServiceTokenVerifier, pkce_challenge

MAPPING = GroupMapping.parse({"/roles/physician": "physician", "/roles/nurse": "nurse"})


@pytest.fixture
def idp() -> IdpStandIn:
    return IdpStandIn()


def provider_for(idp: IdpStandIn, **config) -> OidcProvider:
    cfg = OidcConfig(issuer=ISSUER, client_id=CLIENT_ID, mapping=MAPPING, service_clients=frozenset({"vigil-fhir"}),
                     **config)
    return OidcProvider(cfg, http=httpx.Client(transport=idp.transport()))


def refusal(provider: OidcProvider, token: str, nonce: str = "n-1") -> str:
    with pytest.raises(OidcRefused) as refused:
        provider.verify_id_token(token, nonce)
    return refused.value.reason


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_genuine_id_token_maps_to_its_principal(idp):
    provider = provider_for(idp)
    claims = provider.verify_id_token(idp.mint(idp.claims()), "n-1")
    principal = MAPPING.principal(claims)
    assert (principal.subject, principal.name, principal.role, principal.wards, principal.via) == (
        "oidc:u-alice", "alice", Role.PHYSICIAN, frozenset({"ward-a"}), "oidc")


def test_es256_tokens_verify_too(idp):
    assert provider_for(idp).verify_id_token(idp.mint(idp.claims(), kid="ec1"), "n-1")["sub"] == "u-alice"


def test_alg_none_is_refused(idp):
    token = f"{b64({'alg': 'none', 'kid': 'rs1', 'typ': 'JWT'})}.{b64(idp.claims())}."
    assert "not accepted" in refusal(provider_for(idp), token)


def test_hs256_with_the_public_key_as_secret_is_refused(idp):
    """The classic key-confusion forgery: HMAC keyed with the provider's public RSA key."""
    public_pem = rsa_key("rs1").public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "kid": "rs1", "typ": "JWT"})
    payload = b64(idp.claims())
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature.rstrip(b'=').decode()}"
    assert "not accepted" in refusal(provider_for(idp), token)


def test_an_rs256_header_on_an_ec_key_is_refused(idp):
    token = idp.mint(idp.claims(), kid="ec1", alg="RS256", key=rsa_key("rs1"))
    assert "does not match" in refusal(provider_for(idp), token)


def test_wrong_issuer_wrong_audience_expired_wrong_nonce_are_refused(idp):
    provider = provider_for(idp)
    assert "another issuer" in refusal(provider, idp.mint(idp.claims(iss="https://evil.test/realms/vigil")))
    assert "another audience" in refusal(provider, idp.mint(idp.claims(aud="other-app", azp="other-app")))
    assert "another client" in refusal(provider, idp.mint(idp.claims(aud=[CLIENT_ID, "x"], azp="x")))
    past = int(time.time()) - 3600
    assert "expired" in refusal(provider, idp.mint(idp.claims(iat=past - 300, exp=past)))
    assert "nonce" in refusal(provider, idp.mint(idp.claims(nonce="someone-elses")))
    assert "not valid" in refusal(provider, idp.mint(idp.claims(nonce=None)))
    assert "not an ID token" in refusal(provider, idp.mint(idp.claims(typ="Bearer")))


def test_a_small_clock_skew_is_tolerated_but_not_more(idp):
    provider = provider_for(idp, leeway_s=30)
    now = int(time.time())
    assert provider.verify_id_token(idp.mint(idp.claims(exp=now - 10)), "n-1")
    assert "expired" in refusal(provider, idp.mint(idp.claims(exp=now - 60)))


def test_a_tampered_payload_is_refused(idp):
    header, _payload, signature = idp.mint(idp.claims()).split(".")
    forged = idp.claims(groups=["/roles/physician", "/wards/ward-a", "/wards/ward-b"])
    assert "signature" in refusal(provider_for(idp), f"{header}.{b64(forged)}.{signature}")


def test_a_key_the_provider_does_not_publish_is_refused_and_refetches_are_bounded(idp):
    provider = provider_for(idp, jwks_min_refresh_s=60)
    provider.verify_id_token(idp.mint(idp.claims()), "n-1")
    assert idp.jwks_fetches == 1
    for _ in range(20):  # an attacker's own key, under fresh ids
        assert "does not publish" in refusal(provider, idp.mint(idp.claims(), kid="rs-attacker"))
    assert idp.jwks_fetches == 1, "unknown key ids must not hammer the provider"


def test_key_rotation_is_followed(idp):
    provider = provider_for(idp, jwks_min_refresh_s=0)
    provider.verify_id_token(idp.mint(idp.claims()), "n-1")
    idp.rotate()
    assert provider.verify_id_token(idp.mint(idp.claims(), kid="rs2"), "n-1")["sub"] == "u-alice"
    assert "does not publish" in refusal(provider, idp.mint(idp.claims(), kid="rs1"))  # retired key
    assert idp.jwks_fetches == 3


def test_garbage_is_refused_without_echoing_it(idp):
    for token in ["", "abc", "a.b.c", "é.é.é", "x" * 5000]:
        reason = refusal(provider_for(idp), token)
        assert token[:20] not in reason or not token


def test_discovery_must_name_our_issuer_and_safe_urls():
    idp = IdpStandIn()
    idp.metadata = lambda: {"issuer": "https://evil.test", "authorization_endpoint": "https://a", "token_endpoint":
                            "https://t", "jwks_uri": "https://j"}
    with pytest.raises(OidcRefused, match="another issuer"):
        provider_for(idp).metadata()
    with pytest.raises(OidcRefused, match="https"):
        OidcProvider(OidcConfig(issuer="http://idp.example.org/realms/vigil", client_id="x"))
    OidcProvider(OidcConfig(issuer="http://127.0.0.1:18180/realms/vigil", client_id="x"))  # the test Keycloak


def test_service_tokens_become_service_principals(idp):
    verifier = ServiceTokenVerifier(provider_for(idp))
    principal = verifier.verify(idp.mint(idp.service_claims()))
    assert principal is not None
    assert (principal.subject, principal.role, principal.via, principal.wards) == (
        "service:vigil-fhir", Role.SERVICE, "bearer", frozenset())


def test_service_tokens_are_refused_for_the_wrong_client_audience_role_or_type(idp):
    verifier = ServiceTokenVerifier(provider_for(idp))
    assert verifier.verify(idp.mint(idp.service_claims(azp="vigil-web"))) is None  # a person's token
    assert verifier.verify(idp.mint(idp.service_claims(aud="account"))) is None
    assert verifier.verify(idp.mint(idp.service_claims(realm_access={"roles": ["offline_access"]}))) is None
    assert verifier.verify(idp.mint(idp.service_claims(typ="ID"))) is None
    assert verifier.verify(idp.mint(idp.claims())) is None  # an ID token as a bearer token
    assert verifier.verify(idp.mint(idp.service_claims(), kid="rs-attacker")) is None
    assert verifier.verify("not-a-token") is None


async def test_averify_fetches_keys_off_the_event_loop(idp):
    verifier = ServiceTokenVerifier(provider_for(idp))
    token = idp.mint(idp.service_claims())
    assert not verifier.provider.knows_key(token)
    assert (await verifier.averify(token)).role is Role.SERVICE
    assert verifier.provider.knows_key(token)


def test_pkce_challenge_matches_rfc7636_appendix_b():
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_an_idp_outage_keeps_the_known_keys_and_does_not_retry_on_every_token(idp):
    calls = {"n": 0}
    outage = {"on": False}

    def handler(request):
        if outage["on"]:
            calls["n"] += 1
            raise httpx.ConnectError("down")
        return idp.handler(request)

    cfg = OidcConfig(issuer=ISSUER, client_id=CLIENT_ID, mapping=MAPPING, jwks_min_refresh_s=60, jwks_max_age_s=0)
    provider = OidcProvider(cfg, http=httpx.Client(transport=httpx.MockTransport(handler)))
    provider.verify_id_token(idp.mint(idp.claims()), "n-1")
    outage["on"] = True
    provider._last_fetch_attempt = float("-inf")  # the minimum interval has passed; the set is stale (max age 0)
    for _ in range(5):
        assert provider.verify_id_token(idp.mint(idp.claims()), "n-1")["sub"] == "u-alice"
    assert calls["n"] == 1


def test_a_trailing_slash_issuer_is_matched_exactly():
    idp = IdpStandIn(issuer="https://idp.test/tenant/")
    cfg = OidcConfig(issuer="https://idp.test/tenant/", client_id=CLIENT_ID, mapping=MAPPING)
    provider = OidcProvider(cfg, http=httpx.Client(transport=idp.transport()))
    assert provider.verify_id_token(idp.mint(idp.claims()), "n-1")["iss"] == "https://idp.test/tenant/"
