"""Local accounts: people who log in with a username and a password (the embedded default).

Passwords are stored only as scrypt hashes (stdlib `hashlib.scrypt`, memory-hard), compared in
constant time. An unknown username costs the same hash as a known one, so timing does not tell
which usernames exist. Disabling an account ends its sessions at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from vigil.core.identity import Principal, Role
from vigil.shell.identity.scrypt_hash import scrypt_hash, scrypt_matches
from vigil.shell.stores.tables import sessions, users

T = TypeVar("T")
Lane = Callable[[Callable[[], T]], T]
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")

_DUMMY_HASH = scrypt_hash(secrets.token_urlsafe(16))  # checked against for unknown usernames


def generated_password() -> str:
    """A password to print once: 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True, slots=True)
class Account:
    """A local account as the console and the CLI show it (never its password hash)."""

    username: str
    display_name: str
    role: Role
    wards: tuple[str, ...]
    patients: tuple[str, ...]
    disabled: bool

    def principal(self) -> Principal:
        return Principal(subject=f"local:{self.username}", name=self.display_name, role=self.role,
                         wards=frozenset(self.wards), patients=frozenset(self.patients), via="session")


def _account(row: Any) -> Account:
    return Account(row.username, row.display_name, Role(row.role), tuple(row.wards), tuple(row.patients),
                   bool(row.disabled))


def _here(write: Callable[[], T]) -> T:
    return write()


class Accounts:
    """The users table. `lane` runs writes where they must run (the embedded runtime's writer thread)."""

    def __init__(self, engine: Engine, lane: Lane | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lane: Lane = lane or _here
        self.clock = clock
        self.on_sessions_ended: Callable[[str], None] = lambda _username: None  # sessions' in-memory cache

    def add(self, username: str, role: Role, *, display_name: str | None = None, wards: Iterable[str] = (),
            patients: Iterable[str] = (), password: str | None = None) -> str:
        """Create an account; returns its password (the one given, or a generated one, to show once)."""
        username = username.strip().lower()
        if not (1 <= len(username) <= 64) or not set(username) <= USERNAME_CHARS:
            raise ValueError("username: 1-64 of a-z, 0-9, '.', '_', '-'")
        wards, patients = sorted(set(wards)), sorted(set(patients))
        if role in (Role.NURSE, Role.PHYSICIAN, Role.WARD_ADMIN) and not wards:
            raise ValueError(f"a {role.value} needs at least one --ward")
        if role in (Role.PATIENT, Role.CAREGIVER) and not patients:
            raise ValueError(f"a {role.value} needs at least one --patient")
        if role is Role.PATIENT and len(patients) != 1:
            raise ValueError("a patient account is for exactly one patient")
        if password is not None and len(password) < 12:
            raise ValueError("passwords have at least 12 characters")
        password = password or generated_password()
        row = dict(username=username, display_name=display_name or username, role=role.value, wards=wards,
                   patients=patients, password_hash=scrypt_hash(password), disabled=False, created_t=self.clock())

        def write() -> None:
            with self.engine.begin() as conn:
                if conn.execute(select(users.c.username).where(users.c.username == username)).first():
                    raise ValueError(f"user {username} exists already")
                # The incident audit trail records the display name: two people may not share one.
                if conn.execute(select(users.c.username).where(users.c.display_name == row["display_name"])).first():
                    raise ValueError(f"display name {row['display_name']!r} is taken: the audit trail must tell people apart")
                conn.execute(insert(users).values(**row))
        self.lane(write)
        return password

    def get(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username.strip().lower())).first()
        return None if row is None else _account(row)

    def all(self) -> list[Account]:
        with self.engine.connect() as conn:
            return [_account(row) for row in conn.execute(select(users).order_by(users.c.username))]

    def verify(self, username: str, password: str) -> Account | None:
        """The account, if the password is right and the account is enabled. Same cost either way."""
        username = username.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        ok = scrypt_matches(password, row.password_hash if row is not None else _DUMMY_HASH)
        if row is None or not ok or row.disabled:
            return None
        return _account(row)

    def disable(self, username: str) -> bool:
        """Disable an account and end its sessions. False: no such user."""
        username = username.strip().lower()

        def write() -> bool:
            with self.engine.begin() as conn:
                done = conn.execute(update(users).where(users.c.username == username).values(disabled=True)).rowcount
                conn.execute(delete(sessions).where(sessions.c.username == username))
            return bool(done)
        found = self.lane(write)
        self.on_sessions_ended(username)
        return found

    def set_password(self, username: str, password: str | None = None) -> str:
        """A new password (given or generated); the account's sessions end."""
        password = password or generated_password()
        username = username.strip().lower()

        def write() -> None:
            with self.engine.begin() as conn:
                if not conn.execute(update(users).where(users.c.username == username)
                                    .values(password_hash=scrypt_hash(password))).rowcount:
                    raise ValueError(f"no user {username}")
                conn.execute(delete(sessions).where(sessions.c.username == username))
        self.lane(write)
        self.on_sessions_ended(username)
        return password
