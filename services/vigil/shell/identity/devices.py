"""Devices' MQTT credentials: enrol (a secret shown once), verify, revoke, list, export.

Only a hash of each secret is stored (`device_credentials`, SQLite or PostgreSQL): an scrypt hash
with a per-device random salt, which `verify` checks, and a Mosquitto 2 `$7$` hash (PBKDF2-SHA512)
of the same secret, so the scaled broker's password file can be written from the store
(`mosquitto_password_file`). A secret is 32 random bytes (256 bits): nobody guesses it, whatever the
hash; the memory-hard KDF protects it if the table leaks.

Reconnect storms: scrypt costs ~60 ms of CPU. A device whose secret was verified once in this
process is checked again against an HMAC of that secret under a per-process key (microseconds),
as long as its row is unchanged (same `created_t`, not revoked): the row is read on every
verification, so a revocation by another process (`vigil device revoke`) holds at once. The broker
runs `verify` on a worker thread, never on the event loop (runtimes/embedded/auth.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Engine

from vigil.shell.identity.scrypt_hash import scrypt_hash, scrypt_matches
from vigil.shell.mqtt.client_ids import SERVICE_PREFIX, is_service_client_id
from vigil.shell.registry import Registry
from vigil.shell.stores.tables import device_credentials

log = logging.getLogger("vigil.identity.devices")

DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # the device contract's id (docs/device-protocol.md)
MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's own default (Mosquitto 2.0)


class NotEnrollable(ValueError):
    """The device cannot be given credentials: not a valid id, or no patient in the registry."""


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    """What the store knows of one device's credentials (never the secret)."""

    device_id: str
    patient_id: str | None
    created_t: float
    revoked_t: float | None

    @property
    def active(self) -> bool:
        return self.revoked_t is None


def mosquitto_hash(secret: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """Mosquitto 2's `$7$` format (what `mosquitto_passwd` writes): PBKDF2-HMAC-SHA512, 12-byte salt,
    64-byte hash, both base64."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode('ascii')}${b64(digest).decode('ascii')}"


class DeviceCredentials:
    """The credential store: one row per device in `device_credentials` (same database as the rest)."""

    def __init__(self, engine: Engine, registry: Registry, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.registry = registry
        self.clock = clock
        device_credentials.create(engine, checkfirst=True)
        self._key = secrets.token_bytes(32)  # this process's key for the verified-secret cache
        self._verified: dict[str, tuple[float, bytes]] = {}  # device -> (created_t, HMAC of its secret)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, registry: Registry) -> DeviceCredentials:
        """A store on its own engine (the `vigil device` commands)."""
        engine = create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_wait)
        return cls(engine, registry)

    def enrol(self, device_id: str) -> str:
        """New credentials for a device the registry maps to a patient; returns the secret (shown
        once: only its hashes are kept). Enrolling again replaces the old secret (rotation) and
        lifts a revocation."""
        if not DEVICE_ID.match(device_id):
            raise NotEnrollable(f"not a valid device id: {device_id[:80]!r}")
        if is_service_client_id(device_id):  # a device's id is its MQTT client id (shell/mqtt/client_ids.py)
            raise NotEnrollable(f"device ids may not start with {SERVICE_PREFIX!r} (Vigil's services' MQTT client ids): "
                                f"{device_id}")
        if self.registry.patient_for_device(device_id) is None:
            raise NotEnrollable(f"device {device_id} is not in the roster (no patient): add it there first")
        secret = secrets.token_urlsafe(32)
        row = {"secret_hash": scrypt_hash(secret), "mosquitto_hash": mosquitto_hash(secret),
               "created_t": self.clock(), "revoked_t": None}
        with self.engine.begin() as conn:
            changed = conn.execute(update(device_credentials).where(device_credentials.c.device_id == device_id)
                                   .values(**row)).rowcount
            if not changed:
                conn.execute(device_credentials.insert().values(device_id=device_id, **row))
        self._forget(device_id)
        log.info("device enrolled", extra={"device_id": device_id, "replaced": bool(changed)})
        return secret

    def verify(self, device_id: str | None, secret: str | None) -> bool:
        """Whether these are a device's current credentials. Unknown or revoked devices fail at
        once (device ids are not secret: they are in every topic); a wrong secret costs one scrypt."""
        if not device_id or secret is None or not DEVICE_ID.match(device_id):
            return False
        with self.engine.connect() as conn:
            row = conn.execute(select(device_credentials.c.secret_hash, device_credentials.c.created_t,
                                      device_credentials.c.revoked_t)
                               .where(device_credentials.c.device_id == device_id)).first()
        if row is None or row.revoked_t is not None:
            return False
        mac = hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).digest()
        with self._lock:
            cached = self._verified.get(device_id)
        if cached is not None and cached[0] == row.created_t:
            return hmac.compare_digest(cached[1], mac)
        if not scrypt_matches(secret, row.secret_hash):
            return False
        with self._lock:
            self._verified[device_id] = (row.created_t, mac)
        return True

    def revoke(self, device_id: str) -> bool:
        """Revoke a device's credentials (the row stays, with `revoked_t`); False if none are active."""
        with self.engine.begin() as conn:
            changed = conn.execute(update(device_credentials)
                                   .where(device_credentials.c.device_id == device_id,
                                          device_credentials.c.revoked_t.is_(None))
                                   .values(revoked_t=self.clock())).rowcount
        self._forget(device_id)
        if changed:
            log.warning("device revoked", extra={"device_id": device_id})
        return bool(changed)

    def list(self) -> list[DeviceCredential]:
        """Every device with credentials, revoked ones included, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(device_credentials.c.device_id, device_credentials.c.created_t,
                                       device_credentials.c.revoked_t).order_by(device_credentials.c.device_id)).all()
        return [DeviceCredential(r.device_id, self.registry.patient_for_device(r.device_id), r.created_t, r.revoked_t)
                for r in rows]

    def mosquitto_password_file(self, extra: dict[str, str] | None = None) -> str:
        """The device listeners' Mosquitto password file: `device_id:$7$…` for every active device,
        plus `extra` lines (user -> hash already in Mosquitto's format). Service accounts have
        their own file, on their own listener (deploy/local/lib/mosquitto.sh)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(device_credentials.c.device_id, device_credentials.c.mosquitto_hash)
                                .where(device_credentials.c.revoked_t.is_(None))
                                .order_by(device_credentials.c.device_id)).all()
        lines = [f"{user}:{hashed}" for user, hashed in (extra or {}).items()]
        lines += [f"{r.device_id}:{r.mosquitto_hash}" for r in rows]
        return "".join(line + "\n" for line in lines)

    def _forget(self, device_id: str) -> None:
        with self._lock:
            self._verified.pop(device_id, None)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_wait(dbapi_connection: object, _record: object) -> None:
    """Wait for the running runtime's writer rather than fail with "database is locked"."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
