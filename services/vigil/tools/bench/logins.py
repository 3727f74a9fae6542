"""`vigil bench logins`: what a device's MQTT login costs the credential store (issue 11).

Enrols `devices` devices in a fresh SQLite store, then times, per device: enrolment (two hashes),
the first verification (one scrypt), a reconnect (the cached check: a database read and an HMAC),
a wrong password, and an unknown device. Milliseconds per login, on one thread.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from sqlalchemy import create_engine

from vigil.shell.identity.devices import DeviceCredentials
from vigil.shell.registry import Registry, Roster


def _ms_each(work: Callable[[str], object], ids: list[str]) -> float:
    started = time.perf_counter()
    for device in ids:
        work(device)
    return round((time.perf_counter() - started) * 1000 / len(ids), 3)


def bench_logins(devices: int = 200) -> dict[str, object]:
    ids = [f"wr-{i:05d}" for i in range(devices)]
    registry = Registry(Roster.model_validate({"patients": [{"patient_id": f"pt-{d}", "devices": [{"device_id": d}]}
                                                            for d in ids]}))
    with tempfile.TemporaryDirectory() as tmp:
        store = DeviceCredentials(create_engine(f"sqlite:///{tmp}/credentials.sqlite"), registry)
        secrets: dict[str, str] = {}
        enrol_ms = _ms_each(lambda d: secrets.__setitem__(d, store.enrol(d)), ids)
        first_ms = _ms_each(lambda d: store.verify(d, secrets[d]) or _fail(d), ids)
        reconnect_ms = _ms_each(lambda d: store.verify(d, secrets[d]) or _fail(d), ids)
        wrong_ms = _ms_each(lambda d: store.verify(d, secrets[d] + "x") and _fail(d), ids)
        unknown_ms = _ms_each(lambda d: store.verify("stranger-" + d, secrets[d]) and _fail(d), ids)
        store.close()
    return {"bench": "logins", "devices": devices, "enrol_ms": enrol_ms, "first_login_ms": first_ms,
            "reconnect_login_ms": reconnect_ms, "wrong_password_after_a_login_ms": wrong_ms,
            "unknown_device_ms": unknown_ms,
            "reconnect_storm_s": round(reconnect_ms * devices / 1000, 3),
            "cold_start_storm_s": round(first_ms * devices / 1000, 3)}


def _fail(device: str) -> None:
    raise AssertionError(f"bench logins: wrong verdict for {device}")
