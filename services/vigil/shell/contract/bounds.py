"""A bounded look at raw payload bytes before any parser sees them, without recursion.

A 60 KB payload of 30,000 nested `[` is under the size limit, yet Python's `json.loads` recurses
once per level and raises RecursionError. This pre-scan measures what a parser would have to
hold (nesting depth, values, objects and arrays, the longest string) with a few passes of C-level
byte operations, and refuses what no valid payload can need, with the bound it broke. It never
parses and never recurses, so its cost is bounded by the payload's size.

Strings are cut out first, so brackets and commas inside them do not count: split on `"` when
the payload has no backslash (the device's usual case, the cheapest), otherwise a regular
expression that knows escapes and always matches from an opening quote, so a stray quote costs
one linear pass, never a quadratic retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigil.shell.contract.device import MAX_SAMPLES_PER_BATCH

# A vitals batch needs 4 levels (batch, samples, sample, manual); 8 leaves room to say which
# sample is wrong when a value is a small nested structure, and keeps json.loads far from the
# interpreter's recursion limit.
MAX_DEPTH = 8
# A valid string is at most 64 characters; one character may take 12 bytes escaped (a surrogate pair).
MAX_STRING_BYTES = 1024  # between the quotes, as sent (escapes not decoded)
# A sample has at most 13 fields and its manual entry 2: 15 entries, and the batch 4.
MAX_VALUES = 16 * MAX_SAMPLES_PER_BATCH + 16
# The batch, its samples array, each sample and its manual entry.
MAX_CONTAINERS = 2 * MAX_SAMPLES_PER_BATCH + 2

_STRING = re.compile(rb'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?')  # an optional closing quote: never a retry
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


@dataclass(frozen=True, slots=True)
class Overrun:
    """Why the bytes cannot be a payload: `malformed` (not JSON at all) or over a bound."""

    malformed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Shape:
    """What the pre-scan saw: the bound broken (None: within bounds), and how many object keys
    the bytes hold (colons outside strings). A parser keeps one value per key silently, so a
    count above the keys the parsed models hold means a duplicate key (smuggling)."""

    overrun: Overrun | None
    keys: int


def prescan(raw: bytes) -> Overrun | None:
    """None when `raw` stays within the structural bounds; else what it broke."""
    return measure(raw).overrun


def measure(raw: bytes) -> Shape:
    """`prescan`, and the number of object keys the bytes hold."""
    overrun = _overrun(raw)
    return overrun if isinstance(overrun, Shape) else Shape(None, overrun)


def _overrun(raw: bytes) -> Shape | int:
    """The Shape of a payload that breaks a bound, else the number of keys it holds."""
    if b"\\" in raw:
        strings = _STRING.findall(raw)
        skeleton = _STRING.sub(b"", raw)
        if strings and not (len(strings[-1]) > 1 and strings[-1].endswith(b'"') and _closed(strings[-1])):
            return _refused(True, "a string is not terminated")
        longest = max(map(len, strings), default=2) - 2  # the quotes are not the string's
    else:
        parts = raw.split(b'"')
        if not len(parts) & 1:
            return _refused(True, "a string is not terminated")
        longest = max(map(len, parts[1::2]), default=0)
        skeleton = b"".join(parts[::2])
    if longest > MAX_STRING_BYTES:
        return _refused(False, f"a string of {longest} bytes (limit {MAX_STRING_BYTES})")
    values = skeleton.count(b",") + 1  # separators outside strings: items and entries
    if values > MAX_VALUES:
        return _refused(False, f"{values} values and entries (limit {MAX_VALUES})")
    brackets = skeleton.translate(None, _NOT_BRACKET)
    containers = len(brackets) // 2
    if containers > MAX_CONTAINERS:
        return _refused(False, f"{containers} objects and arrays (limit {MAX_CONTAINERS}: more than "
                              f"{MAX_SAMPLES_PER_BATCH} samples)")
    depth = 0
    while brackets:
        inner = _INNERMOST.sub(b"", brackets)  # each pass removes the innermost level
        if len(inner) == len(brackets):
            return _refused(True, "brackets do not match")
        depth += 1
        if depth > MAX_DEPTH:
            return _refused(False, f"nested deeper than {MAX_DEPTH} levels (a vitals batch needs 4)")
        brackets = inner
    return skeleton.count(b":")


def _refused(malformed: bool, detail: str) -> Shape:
    return Shape(Overrun(malformed, detail), 0)


def _closed(token: bytes) -> bool:
    """Whether a string token ends with an unescaped quote (an odd run of backslashes escapes it)."""
    body = token[1:-1]
    return (len(body) - len(body.rstrip(b"\\"))) % 2 == 0
