"""Server-side sessions (the console's and the patient app's cookie), and single-use stream tickets.

The cookie carries a random session id; the store keeps only its SHA-256, so a copy of the
database opens no session. A session ends at its expiry, after `idle_s` without a request, at
logout, and when its account is disabled or its password changed. Each session has its own CSRF
token: state-changing requests authenticated by the cookie must send it (`X-CSRF-Token`).

Stream tickets let a client that cannot send a cookie (or a header) open a push stream without
putting a credential in a URL that lives on: a ticket is good for one use, within ~60 s.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from vigil.core.identity import Principal, Role
from vigil.shell.identity.accounts import Lane, _here
from vigil.shell.stores.tables import sessions

TOUCH_EVERY_S = 60.0  # last_seen is written at most this often per session (not on every request)
# A session read from the store is trusted from memory this long: most requests then cost no
# query. An end decided by this process (logout, disable, new password) drops it at once; one
# decided by another process (`vigil user disable`, a second notifier) is noticed within this.
CACHE_S = 2.0


def digest(secret: str) -> str:
    """SHA-256 (hex) of a high-entropy secret: what is stored instead of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str
    expires_t: float
    username: str | None = None


class Sessions:
    """The sessions table; `max_age_s` and `idle_s` are the defaults of a new session."""

    def __init__(self, engine: Engine, lane: Lane | None = None, *, max_age_s: float = 12 * 3600.0,
                 idle_s: float = 1800.0, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lane: Lane = lane or _here
        self.max_age_s, self.idle_s = max_age_s, idle_s
        self.clock = clock
        self._cache: dict[str, tuple[Session, float]] = {}  # id hash -> (session, read at)

    def open(self, principal: Principal, *, username: str | None, max_age_s: float | None = None,
             idle_s: float | None = None) -> tuple[str, Session]:
        """A new session for `principal`: returns the cookie's value (shown to nobody else) and the
        session. `max_age_s`, `idle_s`: this session's own (a patient's phone keeps a longer one)."""
        session_id, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), self.clock()
        expires = now + (max_age_s or self.max_age_s)
        row = dict(id_hash=digest(session_id), username=username, subject=principal.subject, name=principal.name,
                   role=principal.role.value, wards=sorted(principal.wards), patients=sorted(principal.patients),
                   csrf=csrf, created_t=now, last_seen_t=now, expires_t=expires,
                   idle_s=idle_s or self.idle_s)

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(sessions).values(**row))
        self.lane(write)
        return session_id, Session(principal, csrf, expires, username)

    def cached(self, session_id: str) -> Session | None:
        """The session if it was read from the store within CACHE_S (no I/O); else None: `find` it."""
        id_hash, now = digest(session_id), self.clock()
        hit = self._cache.get(id_hash)
        if hit is None or now - hit[1] > CACHE_S or now >= hit[0].expires_t:
            return None
        return hit[0]

    def forget(self, username: str) -> None:
        """Drop the cached sessions of `username` (disabled, or a new password)."""
        for id_hash, (session, _) in list(self._cache.items()):
            if session.username == username:
                self._cache.pop(id_hash, None)

    def find(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown, expired, idle too long: then removed)."""
        id_hash, now = digest(session_id), self.clock()
        self._cache.pop(id_hash, None)
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id_hash == id_hash)).first()
        if row is None:
            return None
        if now >= row.expires_t or now - row.last_seen_t > row.idle_s:
            self._delete(id_hash)
            return None
        if now - row.last_seen_t > TOUCH_EVERY_S:
            self._touch(id_hash, now)
        via = "oidc" if row.subject.startswith("oidc:") else "session"  # a session opened by single sign-on says so
        principal = Principal(row.subject, row.name, Role(row.role), frozenset(row.wards), frozenset(row.patients),
                              via=via)
        session = Session(principal, row.csrf, row.expires_t, row.username)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[id_hash] = (session, now)
        return session

    def close(self, session_id: str) -> None:
        """Logout: the session ends here, whatever its cookie says."""
        self._delete(digest(session_id))

    def purge(self) -> int:
        """Remove expired sessions (housekeeping); returns how many."""
        now = self.clock()

        def write() -> int:
            with self.engine.begin() as conn:
                return int(conn.execute(delete(sessions).where(
                    (sessions.c.expires_t <= now) | (sessions.c.last_seen_t + sessions.c.idle_s < now))).rowcount or 0)
        return self.lane(write)

    def _delete(self, id_hash: str) -> None:
        self._cache.pop(id_hash, None)

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))
        self.lane(write)

    def _touch(self, id_hash: str, now: float) -> None:
        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id_hash == id_hash).values(last_seen_t=now))
        self.lane(write)


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode("utf-8", "replace"))


class StreamTickets:
    """Single-use, short-lived tickets for `GET /api/stream?ticket=`: in memory, per process (the
    stream is served by the process that issued it). Only their hashes are kept."""

    def __init__(self, ttl_s: float = 60.0, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.capacity, self.clock = ttl_s, capacity, clock
        self._tickets: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def issue(self, principal: Principal) -> str:
        ticket = secrets.token_urlsafe(24)
        self._tickets[digest(ticket)] = (principal, self.clock() + self.ttl_s)
        while len(self._tickets) > self.capacity:
            self._tickets.popitem(last=False)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        """The ticket's principal, once; None if unknown, used or expired."""
        found = self._tickets.pop(digest(ticket), None)
        if found is None or self.clock() > found[1]:
            return None
        return found[0]
