"""`deploy/local/up mosquitto` on an install from before the listener split: one password file with the
service account in it, `per_listener_settings false`, no service listeners. Re-running `up` must
upgrade it in place (the broker restarted because its config changed, devices kept), and a second
run must leave the upgraded broker alone. A private broker (its own VIGIL_LOCAL_DIR and ports),
never the shared one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vigil.tools.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SERVICE_PASSWORD = "svc-upgrade-test-password"


def _bash(env: dict[str, str], script: str) -> str:
    return subprocess.run(["bash", "-c", f"source deploy/local/lib/common.sh; source deploy/local/lib/mosquitto.sh; "
                                         f"{script}"], cwd=REPO, env=env, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def _up(env: dict[str, str]) -> None:
    subprocess.run([str(REPO / "deploy/local/up"), "mosquitto"], env=env, check=True, capture_output=True, text=True,
                   timeout=300)


def _logs_in(env: dict[str, str], port: str, username: str, password: str) -> bool:
    return subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-u", username, "-P", password,
                           "-t", f"vigil/v1/devices/{username}/errors", "-E", "-W", "3"], env=env,
                          capture_output=True, timeout=30).returncode == 0


# The broker config deploy/local wrote before the split (its listener and auth lines).
OLD_CONF = """per_listener_settings false
allow_anonymous false
password_file {dir}/passwd
acl_file {dir}/acl
user {user}
persistence true
persistence_location {dir}/data/
log_dest stderr

listener {port} 127.0.0.1

listener {tls_port} 127.0.0.1
cafile {dir}/certs/ca.crt
certfile {dir}/certs/server.crt
keyfile {dir}/certs/server.key
"""


@pytest.fixture
def local(tmp_path, servers):  # noqa: ARG001 (servers: only with VIGIL_INTEGRATION=1, under the lock)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(VIGIL_LOCAL_DIR=str(tmp_path / "local"), VIGIL_MQTT_DEV_PASSWORD=SERVICE_PASSWORD,
               **{name: str(free_port()) for name in ("VIGIL_MQTT_PORT", "VIGIL_MQTT_TLS_PORT", "VIGIL_MQTT_SERVICE_PORT",
                                                      "VIGIL_MQTT_SERVICE_TLS_PORT")})
    yield env
    _bash(env, "mosquitto_stop")


def test_up_upgrades_a_pre_split_install_and_then_leaves_it_alone(local):
    mosquitto = Path(local["VIGIL_LOCAL_DIR"]) / "mosquitto"
    pidfile = Path(local["VIGIL_LOCAL_DIR"]) / "run" / "mosquitto.pid"
    # The old install: certificates and ACL from the script, then the old config and one password file.
    _bash(local, "vl_init_dirs; mosquitto_prepare")
    (mosquitto / "mosquitto.conf").write_text(OLD_CONF.format(
        dir=mosquitto, user=_bash(local, "mosquitto_run_user").strip(), port=local["VIGIL_MQTT_PORT"],
        tls_port=local["VIGIL_MQTT_TLS_PORT"]))
    (mosquitto / "service-passwd").unlink()
    _bash(local, f"mosquitto_passwd -b $MQTT_PASSWD vigil-ingest {SERVICE_PASSWORD}; "
                 "mosquitto_passwd -b $MQTT_PASSWD wr-kept wr-kept-pw; mosquitto_fix_owner; "
                 'vl_spawn mosquitto "$(mosquitto_bin)" -c "$MQTT_CONF"; '
                 "vl_wait_until mosquitto 20 mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -u vigil-ingest "
                 f"-P {SERVICE_PASSWORD} -t x -E -W 3")
    old_pid = pidfile.read_text()
    assert _logs_in(local, local["VIGIL_MQTT_PORT"], "vigil-ingest", SERVICE_PASSWORD)  # the old layout, running

    _up(local)
    upgraded_pid = pidfile.read_text()
    assert upgraded_pid != old_pid, "a changed config restarts the broker (listeners are not reloaded)"
    assert "per_listener_settings true" in (mosquitto / "mosquitto.conf").read_text()
    assert [line.split(":")[0] for line in (mosquitto / "passwd").read_text().splitlines()] == ["wr-kept"]
    assert [line.split(":")[0] for line in (mosquitto / "service-passwd").read_text().splitlines()] == ["vigil-ingest"]
    assert _logs_in(local, local["VIGIL_MQTT_PORT"], "wr-kept", "wr-kept-pw")  # enrolled devices kept
    assert _logs_in(local, local["VIGIL_MQTT_SERVICE_PORT"], "vigil-ingest", SERVICE_PASSWORD)
    assert not _logs_in(local, local["VIGIL_MQTT_PORT"], "vigil-ingest", SERVICE_PASSWORD)
    assert not _logs_in(local, local["VIGIL_MQTT_SERVICE_PORT"], "wr-kept", "wr-kept-pw")
    written = (Path(local["VIGIL_LOCAL_DIR"]) / "env").read_text()
    assert f"VIGIL_MQTT_URL=mqtt://127.0.0.1:{local['VIGIL_MQTT_SERVICE_PORT']}" in written
    assert f"VIGIL_MQTT_DEVICE_URL=mqtt://127.0.0.1:{local['VIGIL_MQTT_PORT']}" in written

    _up(local)  # idempotent: nothing changed, the broker keeps running (a SIGHUP at most)
    assert pidfile.read_text() == upgraded_pid
