"""Device credentials on the real PostgreSQL (the scaled path's store)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete

from vigil.shell.identity.devices import DeviceCredentials
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.tables import device_credentials


def test_enrol_verify_revoke_export_on_postgresql(servers):
    device = f"pg-{uuid.uuid4().hex[:8]}"
    registry = Registry(Roster.model_validate({"patients": [{"patient_id": f"p-{device}", "devices": [{"device_id": device}]}]}))
    store = DeviceCredentials.open(servers["VIGIL_DATABASE_URL"], registry)
    try:
        secret = store.enrol(device)
        assert store.verify(device, secret) and not store.verify(device, secret[:-1])
        assert f"{device}:$7$" in store.mosquitto_password_file()
        assert store.revoke(device)
        assert not store.verify(device, secret)
        assert f"{device}:" not in store.mosquitto_password_file()
    finally:
        with store.engine.begin() as conn:
            conn.execute(delete(device_credentials).where(device_credentials.c.device_id == device))
        store.close()
