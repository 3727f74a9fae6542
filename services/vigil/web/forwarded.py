"""Which client a request came from, behind a reverse proxy (docs/security.md, "HTTPS and reverse proxies").

By default Vigil believes no forwarded header: a request's address (the access audit's `address`,
the login rate limit per address) is the TCP peer's, and it is secure (the session cookie's Secure
flag) only when it came over Vigil's own TLS. Anyone can send `X-Forwarded-For: 10.0.0.1` or
`X-Forwarded-Proto: https`; believing them from anyone would let a caller pick the address the
audit records and dodge the per-address login limit.

With VIGIL_TRUSTED_PROXIES (addresses or networks), and only for a request whose TCP peer is one of
them: the client address is the right-most `X-Forwarded-For` entry that is not itself a trusted
proxy (entries further left were written by the client and may be forged), and `X-Forwarded-Proto`
(its last value, the one the proxy wrote) says whether the client spoke https. `Forwarded` (RFC 7239)
and `X-Real-IP` are never read: a proxy must send the X-Forwarded-* pair and overwrite what the
client sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """VIGIL_TRUSTED_PROXIES as networks ("10.0.0.5" is 10.0.0.5/32); a bad entry is refused at start."""
    found: list[Network] = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"VIGIL_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
    return tuple(found)


def _within(address: str | None, trusted: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy; then, right to left,
    the first X-Forwarded-For entry that is not a trusted proxy (a malformed one ends the walk)."""
    if not _within(peer, trusted):
        return peer
    chain = [part.strip() for header in forwarded_for for part in header.split(",") if part.strip()]
    client = peer
    for entry in reversed(chain):
        try:
            ipaddress.ip_address(entry)
        except ValueError:
            break
        client = entry
        if not _within(entry, trusted):
            break
    return client


def add_trusted_proxies(app: web.Application, entries: Iterable[str]) -> None:
    """First middleware of `app`: the forwarded client address and scheme, from trusted proxies only."""
    trusted = networks(entries)
    if not trusted:
        return

    @web.middleware
    async def forwarded(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not _within(request.remote, trusted):
            return await handler(request)
        remote = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        changes: dict[str, str] = {"remote": remote or ""}
        if proto in ("http", "https"):
            changes["scheme"] = proto
        return await handler(request.clone(**changes))

    app.middlewares.insert(0, forwarded)
