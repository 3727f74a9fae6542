"""HTTPS for the API and apps (docs/security.md, "HTTPS and reverse proxies").

With VIGIL_HTTP_TLS_CERT and VIGIL_HTTP_TLS_KEY set, a runtime's HTTP port speaks TLS only (1.2 at
least): there is no plain listener beside it to fall back to, so a session cookie (Secure: the
request came over TLS) and a bearer token never cross the network in clear. Every answer then
carries Strict-Transport-Security, so a browser that once reached Vigil over HTTPS refuses to
be downgraded. Without a certificate the runtime serves plain HTTP, as before: on loopback, or
behind a reverse proxy that terminates TLS (and sends HSTS itself); served in clear beyond
loopback with no trusted proxy, it says so loudly at start.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from vigil.settings import SettingsError, VigilSettings, is_loopback

log = logging.getLogger("vigil.service")


def _private_key(path: Path, setting: str) -> None:
    """A TLS key is a secret: refused when missing or readable by group or others."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path} ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"{setting}: {path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
                            f"make it owner-only: chmod 600 {path}")


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 at least) for the PEM chain `cert` and its private `key`."""
    _private_key(key, "VIGIL_HTTP_TLS_KEY")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"VIGIL_HTTP_TLS_CERT/VIGIL_HTTP_TLS_KEY: cannot load {cert} with {key} ({exc})") from None
    return context


@dataclass(frozen=True)
class HttpTransport:
    """How a runtime's HTTP port is served: TLS or not, HSTS, and which reverse proxies are believed."""

    tls: ssl.SSLContext | None = None
    hsts_max_age_s: int = 0
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: VigilSettings) -> HttpTransport:
        cert, key = settings.http_tls_cert, settings.http_tls_key
        if (cert is None) != (key is None):
            raise SettingsError("VIGIL_HTTP_TLS_CERT and VIGIL_HTTP_TLS_KEY go together")
        tls = server_context(cert, key) if cert is not None and key is not None else None
        return cls(tls, settings.http_hsts_max_age_s, tuple(settings.trusted_proxies))

    def add_to(self, app: web.Application) -> None:
        """HSTS on every answer (errors included) when served over TLS."""
        if self.tls is None or self.hsts_max_age_s <= 0:
            return
        value = f"max-age={self.hsts_max_age_s}"

        async def hsts(_request: web.Request, response: web.StreamResponse) -> None:
            response.headers["Strict-Transport-Security"] = value

        app.on_response_prepare.append(hsts)

    def warn_if_plain(self, host: str, port: int) -> None:
        """Plain HTTP bound beyond loopback with no proxy in front that Vigil knows of: loud, at start."""
        if self.tls is None and not self.trusted_proxies and not _loopback_only(host):
            log.warning("HTTP API SERVED IN PLAIN TEXT beyond this machine: logins, session cookies and patient data "
                        "travel unencrypted; set VIGIL_HTTP_TLS_CERT and VIGIL_HTTP_TLS_KEY, or put a TLS reverse "
                        "proxy in front (VIGIL_TRUSTED_PROXIES)", extra={"host": host, "port": port})


def _loopback_only(hosts: str | Iterable[str]) -> bool:
    names = [hosts] if isinstance(hosts, str) else list(hosts)
    return all(is_loopback(name) for name in names)
