"""Reading what a caller sends, for every handler: bounded numbers, known words, short printable
ids, and JSON objects of the expected shape. Anything else is refused with 400 and the reason,
never a 500 (docs/security.md, "Hostile requests").

Values echoed in a reason are shown with `repr`, so a reason can always be encoded (a lone
surrogate or a control character in a query value would otherwise break the answer itself).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web

MAX_BODY_BYTES = 64 * 1024  # the API takes small JSON bodies; aiohttp answers 413 beyond (client_max_size)
MAX_ID = 128  # incident, alert, patient, inbox ids
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: int() would also take "١٢", "1_0", " 7 "


def _shown(value: str) -> str:
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


def bad_request(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=reason)


def whole_number(value: str | None, name: str, *, low: int, high: int, default: int | None = None) -> int | None:
    """A whole number in [low, high] written in ASCII digits; absent or empty: `default`."""
    if value is None or value == "":
        return default
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}, not {_shown(value)}")
    return int(value)


def query_int(request: web.Request, name: str, *, default: int, low: int = 1, high: int = 1000) -> int:
    """A bounded whole number from the query (`?limit=`): abc, -1, 1e9, 0 and huge are refused."""
    value = whole_number(request.query.get(name), name, low=low, high=high, default=default)
    assert value is not None
    return value


def one_of(request: web.Request, name: str, allowed: Collection[str]) -> str | None:
    """One of a few known words from the query (`?state=`), or None when absent or empty."""
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(sorted(allowed))}, not {_shown(value)}")
    return value


def check_id(value: str, name: str, *, max_len: int = MAX_ID) -> str:
    """A short printable id: no control characters, no undecodable bytes, at most `max_len` long."""
    if len(value) > max_len:
        raise bad_request(f"{name} is too long ({len(value)} characters; at most {max_len})")
    if not value.isprintable() or not _encodable(value):
        raise bad_request(f"{name} has characters an id cannot have: {_shown(value)}")
    return value


def query_id(request: web.Request, name: str, *, required: bool = False) -> str | None:
    """An id from the query (`?patient_id=`, `?inbox=`): None when absent or blank, unless required."""
    value = request.query.get(name, "").strip()
    if not value:
        if required:
            raise bad_request(f"{name} is required")
        return None
    return check_id(value, name)


def path_id(request: web.Request, name: str) -> str:
    """An id from the path (`/api/incidents/{ident}`)."""
    return check_id(request.match_info[name], name)


async def json_object(request: web.Request, fields: Mapping[str, int], example: str) -> dict[str, str]:
    """The body as a JSON object whose `fields` are text (or absent or null), each clipped to its
    length; other keys are ignored. No body: {}. Lists, strings, numbers, nested values, invalid
    JSON, bytes that are not UTF-8 and nesting deep enough to exhaust the parser are refused."""
    if not request.can_read_body:
        return {}
    try:
        body: Any = json.loads((await request.read()).decode("utf-8"))  # JSON is UTF-8 (RFC 8259), whatever the charset says
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise bad_request(f"the body must be JSON: {example}") from None
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object: {example}")
    found: dict[str, str] = {}
    for name, size in fields.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not _encodable(value):
            raise bad_request(f"{name!r} must be text: {example}")
        found[name] = value[:size]
    return found


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8
        return False
    return True
