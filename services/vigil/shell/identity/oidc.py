"""Single sign-on with OpenID Connect: the hospital's identity provider says who a clinician is.

Discovery, the provider's signing keys (cached, refetched on an unknown key id at most once per
`jwks_min_refresh_s`), token verification and the authorization-code flow with PKCE, state and
nonce. A token is trusted only if the provider's own keys signed it with RS256 or ES256 (`none`
and HMAC are refused before any key is looked up), for our issuer, our client, not expired.
What a verified token's groups make of the caller is vigil.shell.identity.claims.

The HTTP calls that fetch keys and metadata are blocking (httpx, short timeouts) and run only on a
cold cache or an unknown key id; async callers use the `a*` methods, which move them to a thread.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt

from vigil.core.identity import Principal, Role
from vigil.shell.identity.claims import GroupMapping, OidcRefused
from vigil.settings import secret_value

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})
_KEY_TYPE = {"RS256": "RSA", "ES256": "EC"}
_MAX_KEYS = 32
_MAX_DOCUMENT_BYTES = 256 * 1024

__all__ = ["AuthorizationCodeFlow", "LoginAttempt", "OidcConfig", "OidcProvider", "OidcRefused",
           "ServiceTokenVerifier", "pkce_challenge"]


@dataclass(frozen=True)
class OidcConfig:
    """One identity provider and this Vigil's registration with it (VIGIL_OIDC_* settings)."""

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)  # never in a repr or a log line
    redirect_uri: str = ""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    mapping: GroupMapping = field(default_factory=GroupMapping)
    service_clients: frozenset[str] = frozenset()
    service_audience: str = "vigil-api"
    service_role: str | None = "vigil-service"
    leeway_s: float = 30.0
    http_timeout_s: float = 5.0
    jwks_min_refresh_s: float = 30.0
    jwks_max_age_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Any) -> OidcConfig | None:
        """The configuration, or None when VIGIL_OIDC_ISSUER is unset (single sign-on off)."""
        if not settings.oidc_issuer:
            return None
        return cls(
            issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
            client_secret=secret_value(settings.oidc_client_secret) or "", redirect_uri=settings.oidc_redirect_uri or "",
            scopes=tuple(settings.oidc_scopes.split()),
            mapping=GroupMapping.parse(settings.oidc_role_groups, settings.oidc_ward_group_prefix,
                                       settings.oidc_groups_claim, settings.oidc_name_claim),
            service_clients=frozenset(settings.oidc_service_clients), service_audience=settings.oidc_service_audience,
            service_role=settings.oidc_service_role or None, leeway_s=settings.oidc_leeway_s)


def require_safe_url(url: str, what: str) -> None:
    """HTTPS, or plain HTTP only to this machine's loopback (the test Keycloak)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise OidcRefused(f"{what} must be https (plain http only on 127.0.0.1): {parts.scheme}://{parts.hostname}")


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge of RFC 7636."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    """Metadata and signing keys of one issuer, and the verification of its tokens."""

    def __init__(self, config: OidcConfig, http: httpx.Client | None = None) -> None:
        require_safe_url(config.issuer, "the issuer")
        self.config = config
        self._http = http or httpx.Client(timeout=config.http_timeout_s, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at = float("-inf")
        self._last_fetch_attempt = float("-inf")

    # -- metadata and keys ---------------------------------------------------------------------
    def _get_json(self, url: str) -> dict[str, Any]:
        response = self._http.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200 or len(response.content) > _MAX_DOCUMENT_BYTES:
            raise OidcRefused(f"the identity provider answered {response.status_code} for {urlsplit(url).path}")
        body = _json(response)
        if not isinstance(body, dict):
            raise OidcRefused("the identity provider sent a document that is not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The discovery document; its issuer must be ours, exactly (OpenID Connect Discovery 4.3)."""
        if self._metadata is None:
            doc = self._get_json(f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration")
            if doc.get("issuer") != self.config.issuer:
                raise OidcRefused("the discovery document names another issuer")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(name), str):
                    raise OidcRefused(f"the discovery document has no {name}")
                require_safe_url(doc[name], name)
            self._metadata = doc
        return self._metadata

    def _refresh_keys(self) -> None:
        doc = self._get_json(self.metadata()["jwks_uri"])
        keys: dict[str, jwt.PyJWK] = {}
        for entry in (doc.get("keys") or [])[:_MAX_KEYS]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("kty") not in _KEY_TYPE.values() or entry.get("alg", "RS256") not in ALLOWED_ALGORITHMS:
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                log.warning("skipping an unusable key in the identity provider's key set")
        self._keys = keys
        self._keys_fetched_at = time.monotonic()
        log.info("identity provider signing keys fetched: %d", len(keys))

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The provider's key with this id. An unknown id (the provider rotated its keys) or a set older
        than jwks_max_age_s refetches the set, but at most once per jwks_min_refresh_s (failed tries
        included), so a flood of forged ids or an IdP outage cannot make every request wait on the IdP."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._keys_fetched_at >= self.config.jwks_max_age_s
            if (kid not in self._keys or stale) and now - self._last_fetch_attempt >= self.config.jwks_min_refresh_s:
                self._last_fetch_attempt = now
                try:
                    self._refresh_keys()
                except (httpx.HTTPError, OidcRefused) as exc:
                    if not self._keys:
                        raise
                    log.warning("identity provider keys not refreshed (%s); keeping the %d known keys",
                                type(exc).__name__, len(self._keys))
            key = self._keys.get(kid)
        if key is None:
            raise OidcRefused("the token was signed with a key the identity provider does not publish")
        return key

    def knows_key(self, token: str) -> bool:
        """True if verifying this token needs no network call."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True  # refused without a key anyway
        fresh = time.monotonic() - self._keys_fetched_at < self.config.jwks_max_age_s
        return fresh and kid in self._keys

    # -- tokens --------------------------------------------------------------------------------
    def decode(self, token: str, *, audience: str, require: tuple[str, ...] = ()) -> dict[str, Any]:
        """The claims of a token signed by the provider (RS256/ES256 only), for `audience`, from our
        issuer, not expired (with a small leeway). Raises OidcRefused with a reason, never the token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcRefused("not a signed JSON Web Token") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise OidcRefused(f"signature algorithm {str(alg)[:16]!r} is not accepted (RS256 or ES256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise OidcRefused("the token names no signing key")
        key = self.signing_key(kid)
        if key.algorithm_name != alg:
            raise OidcRefused("the token's algorithm does not match its key")
        try:
            return jwt.decode(
                token, key=key.key, algorithms=[alg], audience=audience, issuer=self.config.issuer,
                leeway=self.config.leeway_s, options={"require": ["exp", "iat", "iss", "aud", "sub", *require]})
        except jwt.ExpiredSignatureError:
            raise OidcRefused("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcRefused("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise OidcRefused("the token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise OidcRefused("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise OidcRefused(f"the token is not valid: {type(exc).__name__}") from None

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """An ID token from our login: our client in aud (and azp when there are several), our nonce."""
        claims = self.decode(token, audience=self.config.client_id, require=("nonce",))
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.config.client_id:
            raise OidcRefused("the ID token was issued to another client")
        if claims.get("typ", "ID") != "ID":
            raise OidcRefused("not an ID token")
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise OidcRefused("the ID token's nonce is not this login's")
        return claims


@dataclass(frozen=True)
class LoginAttempt:
    """What one browser's login must come back with: kept server-side, never in a URL."""

    state: str
    nonce: str
    code_verifier: str
    browser_binding: str
    started_at: float


class AuthorizationCodeFlow:
    """The authorization-code flow with PKCE (S256), state and nonce, for the ward console."""

    def __init__(self, provider: OidcProvider, http: httpx.AsyncClient | None = None) -> None:
        if not provider.config.redirect_uri or not provider.config.client_secret:
            raise ValueError("the login flow needs VIGIL_OIDC_REDIRECT_URI and VIGIL_OIDC_CLIENT_SECRET")
        self.provider = provider
        self.config = provider.config
        self._http = http or httpx.AsyncClient(timeout=self.config.http_timeout_s, follow_redirects=False)

    async def begin(self) -> tuple[str, LoginAttempt]:
        """The provider's authorization URL to send the browser to, and the attempt to keep."""
        metadata = await asyncio.to_thread(self.provider.metadata)
        attempt = LoginAttempt(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                               code_verifier=secrets.token_urlsafe(64), browser_binding=secrets.token_urlsafe(32),
                               started_at=time.monotonic())
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
            "scope": " ".join(self.config.scopes), "state": attempt.state, "nonce": attempt.nonce,
            "code_challenge": pkce_challenge(attempt.code_verifier), "code_challenge_method": "S256"})
        return f"{metadata['authorization_endpoint']}?{query}", attempt

    async def finish(self, code: str, attempt: LoginAttempt) -> Principal:
        """Exchange the code (with the PKCE verifier and our client secret), verify the ID token,
        and map its claims to a Principal. Raises OidcRefused with a reason."""
        metadata = await asyncio.to_thread(self.provider.metadata)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": attempt.code_verifier}
        response = await self._http.post(metadata["token_endpoint"], data=form, auth=self._client_auth(),
                                         headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise OidcRefused(f"the identity provider refused the code ({_error_code(response)})")
        body = _json(response)
        id_token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(id_token, str):
            raise OidcRefused("the identity provider sent no ID token")
        claims = await asyncio.to_thread(self.provider.verify_id_token, id_token, attempt.nonce)
        return self.config.mapping.principal(claims)

    def _client_auth(self) -> httpx.BasicAuth:
        # RFC 6749 2.3.1: client id and secret are form-encoded before Basic.
        return httpx.BasicAuth(quote_plus(self.config.client_id), quote_plus(self.config.client_secret))


def _json(response: httpx.Response) -> Any:
    """The body as JSON, or None if it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> str:
    """The OAuth error code only (a fixed vocabulary), never the provider's free text."""
    body = _json(response)
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else f"HTTP {response.status_code}"


class ServiceTokenVerifier:
    """Bearer tokens of integrations (FHIR export, webhooks) obtained by client credentials.

    `verify(token) -> Principal | None`, the shape of the API's bearer verifiers: the token must be
    an access token for `service_audience`, issued to one of `service_clients` (azp), holding
    `service_role` when one is set. The Principal is Role.SERVICE, subject "service:<client id>".
    """

    def __init__(self, provider: OidcProvider) -> None:
        self.provider = provider
        self.config = provider.config

    def verify(self, token: str) -> Principal | None:
        try:
            return self.principal(token)
        except OidcRefused as refused:
            log.info("service token refused: %s", refused.reason)
        except httpx.HTTPError as exc:
            log.warning("service token not verified, identity provider unreachable: %s", type(exc).__name__)
        return None

    async def averify(self, token: str) -> Principal | None:
        """verify(), off the event loop when the keys must be fetched first."""
        if self.provider.knows_key(token):
            return self.verify(token)
        return await asyncio.to_thread(self.verify, token)

    def principal(self, token: str) -> Principal:
        claims = self.provider.decode(token, audience=self.config.service_audience, require=("azp",))
        client = claims["azp"]
        if client not in self.config.service_clients:
            raise OidcRefused("the token was issued to a client that is not a Vigil integration")
        if claims.get("typ", "Bearer") != "Bearer":
            raise OidcRefused("not an access token")
        if self.config.service_role and self.config.service_role not in _roles(claims):
            raise OidcRefused(f"the integration lacks the {self.config.service_role!r} role")
        return Principal(subject=f"service:{client}", name=client, role=Role.SERVICE, via="bearer")


def _roles(claims: dict[str, Any]) -> set[str]:
    """Role names from Keycloak's realm_access.roles or a plain `roles` claim."""
    realm = claims.get("realm_access")
    found = realm.get("roles") if isinstance(realm, dict) else claims.get("roles")
    return {r for r in found if isinstance(r, str)} if isinstance(found, list) else set()
