"""A stand-in OpenID Connect provider for unit tests: keys generated here, discovery and JWKS over
httpx.MockTransport, a token endpoint that checks PKCE, and a minting helper for forged tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.test/realms/vigil"
CLIENT_ID = "vigil-web"
CLIENT_SECRET = "web-secret"
REDIRECT_URI = "https://vigil.test/auth/oidc/callback"


@lru_cache(maxsize=None)
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@lru_cache(maxsize=None)
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class IdpStandIn:
    """Keys `rs1` (RS256) and `ec1` (ES256) are published; `rotate()` publishes `rs2` instead of `rs1`."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.published = {"rs1": (rsa_key("rs1"), "RS256"), "ec1": (ec_key("ec1"), "ES256")}
        self.jwks_fetches = 0
        self.codes: dict[str, dict[str, str]] = {}  # code -> {nonce, challenge, sub, groups}
        self.used_codes: set[str] = set()

    def rotate(self) -> None:
        self.published = {"rs2": (rsa_key("rs2"), "RS256"), "ec1": (ec_key("ec1"), "ES256")}

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
                "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
                "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid, alg) for kid, (key, alg) in self.published.items()]}

    # -- tokens ------------------------------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": "u-alice", "typ": "ID",
                "iat": now, "exp": now + 300, "nonce": "n-1", "preferred_username": "alice",
                "groups": ["/roles/physician", "/wards/ward-a"], "jti": uuid.uuid4().hex}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def service_claims(self, **overrides: Any) -> dict[str, Any]:
        return self.claims(**{"aud": ["vigil-api", "account"], "azp": "vigil-fhir", "typ": "Bearer", "nonce": None,
                              "groups": None, "sub": "sa-fhir", "realm_access": {"roles": ["vigil-service"]},
                              **overrides})

    def mint(self, claims: dict[str, Any], kid: str = "rs1", alg: str | None = None, key: Any = None,
             headers: dict[str, Any] | None = None) -> str:
        if key is None:
            key = (rsa_key(kid) if kid.startswith("rs") else ec_key(kid))
        alg = alg or ("RS256" if kid.startswith("rs") else "ES256")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    # -- HTTP ------------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.metadata())
        if path.endswith("/certs"):
            self.jwks_fetches += 1
            return httpx.Response(200, json=self.jwks())
        if path.endswith("/token") and request.method == "POST":
            return self._token(request)
        return httpx.Response(404)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = self.codes.get(form.get("code", ""))
        if grant is None or form["code"] in self.used_codes or form.get("redirect_uri") != REDIRECT_URI:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "Code not valid <b>x</b>"})
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "PKCE verification failed"})
        self.used_codes.add(form["code"])
        id_token = self.mint(self.claims(nonce=grant["nonce"], sub=grant["sub"], groups=grant["groups"]))
        return httpx.Response(200, json={"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
