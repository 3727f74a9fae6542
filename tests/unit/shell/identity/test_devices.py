"""Device credentials: enrol (secret shown once, only hashes stored), verify, revoke, list, export."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest
from sqlalchemy import create_engine, select

from vigil.shell.identity.devices import DeviceCredentials, NotEnrollable, mosquitto_hash
from vigil.shell.identity.scrypt_hash import scrypt_hash, scrypt_matches
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.tables import device_credentials

ROSTER = Roster.model_validate({"patients": [
    {"patient_id": "p1", "devices": [{"device_id": "wr-1"}]},
    {"patient_id": "p2", "devices": [{"device_id": "wr-2"}]},
]})


@pytest.fixture
def store(tmp_path):
    credentials = DeviceCredentials(create_engine(f"sqlite:///{tmp_path / 'c.sqlite'}"), Registry(ROSTER))
    yield credentials
    credentials.close()


def test_enrol_returns_a_secret_that_verifies_and_is_never_stored(store, caplog):
    caplog.set_level(logging.DEBUG)
    secret = store.enrol("wr-1")
    assert len(secret) >= 40
    assert store.verify("wr-1", secret)
    assert store.verify("wr-1", secret)  # the cached path agrees
    with store.engine.connect() as conn:
        row = conn.execute(select(device_credentials)).one()._mapping
    assert secret not in " ".join(str(v) for v in row.values())
    assert row["secret_hash"].startswith("scrypt$") and row["mosquitto_hash"].startswith("$7$101$")
    assert secret not in caplog.text


def test_wrong_secret_unknown_and_other_device_fail(store):
    one, two = store.enrol("wr-1"), store.enrol("wr-2")
    assert not store.verify("wr-1", two)
    assert not store.verify("wr-1", one + "x")
    assert not store.verify("wr-1", "")
    assert not store.verify("wr-1", None)
    assert not store.verify(None, one)
    assert not store.verify("wr-9", one)
    store.verify("wr-1", one)  # cached now: a wrong secret still fails
    assert not store.verify("wr-1", two)


def test_only_a_device_the_registry_maps_to_a_patient_may_be_enrolled(store):
    with pytest.raises(NotEnrollable):
        store.enrol("wr-unknown")
    with pytest.raises(NotEnrollable):
        store.enrol("../etc/passwd")
    assert store.list() == []


@pytest.mark.parametrize("device_id", ["vigil-gw-1", "vigil-ingest-host", "VIGIL-gw-1"])
def test_no_device_is_enrolled_under_the_services_client_id_prefix(tmp_path, device_id):
    """On the scaled path a device's MQTT client id is its device id: one called `vigil-gw-1` would
    hold (and could take over) the session of the gateway with that id (shell/mqtt/client_ids.py)."""
    roster = Roster.model_validate({"patients": [{"patient_id": "p1", "devices": [{"device_id": device_id}]}]})
    store = DeviceCredentials(create_engine(f"sqlite:///{tmp_path / 'c.sqlite'}"), Registry(roster))
    try:
        with pytest.raises(NotEnrollable, match="may not start with 'vigil-'"):
            store.enrol(device_id)  # even though the roster maps it to a patient
        assert store.list() == []
        assert "vigil-" not in store.mosquitto_password_file()
    finally:
        store.close()


def test_revoke_holds_at_once_even_after_a_cached_verification(store):
    secret = store.enrol("wr-1")
    assert store.verify("wr-1", secret)
    assert store.revoke("wr-1")
    assert not store.verify("wr-1", secret)
    assert not store.revoke("wr-1")
    [listed] = store.list()
    assert listed.device_id == "wr-1" and listed.patient_id == "p1" and not listed.active


def test_revocation_by_another_process_reaches_a_running_verifier(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    runtime = DeviceCredentials(create_engine(url), Registry(ROSTER))
    command = DeviceCredentials.open(url, Registry(ROSTER))
    secret = command.enrol("wr-1")
    assert runtime.verify("wr-1", secret)
    command.revoke("wr-1")
    assert not runtime.verify("wr-1", secret)


def test_enrolling_again_rotates_the_secret(store):
    old = store.enrol("wr-1")
    assert store.verify("wr-1", old)
    new = store.enrol("wr-1")
    assert store.verify("wr-1", new)
    assert not store.verify("wr-1", old)
    store.revoke("wr-1")
    again = store.enrol("wr-1")  # a revoked device enrolled again is active, with a new secret
    assert store.verify("wr-1", again) and not store.verify("wr-1", new)


def test_mosquitto_export_lists_only_active_devices_in_mosquitto_format(store):
    one = store.enrol("wr-1")
    store.enrol("wr-2")
    store.revoke("wr-2")
    exported = store.mosquitto_password_file({"vigil-ingest": "$7$101$x$y"})
    lines = exported.splitlines()
    assert lines[0] == "vigil-ingest:$7$101$x$y"
    assert [line.split(":")[0] for line in lines[1:]] == ["wr-1"]
    _, _, iterations, salt, digest = lines[1].split(":", 1)[1].split("$")
    expected = hashlib.pbkdf2_hmac("sha512", one.encode(), base64.b64decode(salt), int(iterations))
    assert base64.b64decode(digest) == expected and len(base64.b64decode(salt)) == 12


def test_mosquitto_hash_matches_what_mosquitto_passwd_wrote():
    # `mosquitto_passwd -b -c file dev1 secret` (Mosquitto 2.0.11) wrote this line:
    line = "$7$101$sHp1NXcZjyVim5D2$JNTvRMWP1qP+A3UK4PVlnuX5geeC0fbngo0JNOxxBo4cgN+TvErMIZNeZvfqfMPUbEjhafe04XTL1DxZoe8zhw=="
    assert mosquitto_hash("secret", salt=base64.b64decode("sHp1NXcZjyVim5D2")) == line


def test_scrypt_hash_salts_per_device_and_refuses_malformed_hashes():
    a, b = scrypt_hash("s", n=2**10), scrypt_hash("s", n=2**10)
    assert a != b and scrypt_matches("s", a) and scrypt_matches("s", b)
    assert not scrypt_matches("s", "garbage") and not scrypt_matches("s", "scrypt$x$y$z$w$v")
