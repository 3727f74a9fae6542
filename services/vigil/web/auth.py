"""Who may call the operator API: the bearer token (VIGIL_API_TOKEN)."""

from __future__ import annotations

import hmac

from aiohttp import web


def bearer_ok(request: web.Request, token: str, *, query_token: bool = False) -> bool:
    """The bearer token; for the push streams also `?access_token=`, because a browser's
    EventSource cannot set headers (keep such URLs out of shared logs)."""
    if _same(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return True
    return query_token and _same(request.query.get("access_token", ""), token)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of bytes: compare_digest refuses non-ASCII str (a TypeError, a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
