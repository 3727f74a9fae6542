"""Drives the real Keycloak's login page over HTTP, as a browser would: fetch the form, post the
credentials, and stop at the redirect back to Vigil's callback (returned, not followed)."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import httpx

_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.S)


async def keycloak_login(authorization_url: str, username: str, password: str) -> str:
    """The callback URL Keycloak redirects the browser to after this user logs in (its query holds
    state and code, or an error)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
        page = await browser.get(authorization_url)
        if page.status_code == 302:  # an error redirect straight back (e.g. a bad redirect_uri is a 400 page)
            return page.headers["location"]
        assert page.status_code == 200, f"login page answered {page.status_code}: {page.text[:300]}"
        match = _FORM_ACTION.search(page.text)
        assert match, f"no login form in the page: {page.text[:500]}"
        action = html.unescape(match.group(1))
        # Keycloak marks its cookies Secure even over http; browsers keep sending them to 127.0.0.1
        # (a potentially trustworthy origin), httpx does not, so they are forwarded by hand.
        jar = "; ".join(f"{c.name}={c.value}" for c in page.cookies.jar)
        answer = await browser.post(action, data={"username": username, "password": password, "credentialId": ""},
                                    headers={"Cookie": jar})
        assert answer.status_code in (302, 303), f"login answered {answer.status_code}: {answer.text[:500]}"
        return answer.headers["location"]


def callback_path(location: str) -> str:
    """Path and query of Keycloak's redirect, to replay against the app under test."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"
