"""Patient enrolment codes: a nurse gives a patient a one-time code that binds their phone to them.

A code is random (10 characters of an unambiguous alphabet, about 50 bits), short-lived
(VIGIL_ENROLMENT_CODE_TTL_S), good once, and stored only as its SHA-256. Redeeming it opens a
patient session for exactly that patient. It travels in a form POST body (or a link's fragment,
which browsers never send to the server), never in a URL query.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from vigil.shell.identity.accounts import Lane, _here
from vigil.shell.identity.sessions import digest
from vigil.shell.stores.tables import enrolment_codes

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 10


def normalise(code: str) -> str:
    """As a patient may type it: any case, spaces and dashes ignored."""
    return "".join(c for c in code.upper() if c not in " -")


class EnrolmentCodes:
    def __init__(self, engine: Engine, lane: Lane | None = None, *, ttl_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lane: Lane = lane or _here
        self.ttl_s, self.clock = ttl_s, clock

    def issue(self, patient_id: str, created_by: str) -> str:
        """A new code for `patient_id`; shown once, to the nurse who gives it to the patient."""
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        now = self.clock()
        row = dict(code_hash=digest(code), patient_id=patient_id, created_by=created_by, created_t=now,
                   expires_t=now + self.ttl_s, used_t=None)

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(enrolment_codes).values(**row))
        self.lane(write)
        return code

    def redeem(self, code: str) -> str | None:
        """The patient the code was issued for, once (the code is spent); None: unknown, used, expired."""
        code_hash, now = digest(normalise(code)), self.clock()

        def write() -> str | None:
            with self.engine.begin() as conn:
                row = conn.execute(select(enrolment_codes).where(enrolment_codes.c.code_hash == code_hash)).first()
                if row is None or row.used_t is not None or now >= row.expires_t:
                    return None
                spent = conn.execute(update(enrolment_codes).where(
                    enrolment_codes.c.code_hash == code_hash, enrolment_codes.c.used_t.is_(None)).values(used_t=now))
                return row.patient_id if spent.rowcount == 1 else None  # two redeemers at once: one wins
        return self.lane(write)
