"""`vigil device enrol|revoke|list|export-mosquitto`: devices' MQTT credentials (docs/security.md, "Devices").

The store is the runtime's database (`VIGIL_DATABASE_URL`, else the SQLite file under `VIGIL_DATA_DIR`);
the roster (`--roster` or `VIGIL_ROSTER`) says which devices belong to a patient and may be enrolled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from vigil.settings import VigilSettings
from vigil.shell.stores.private_files import private_dir


def _store(args: argparse.Namespace):  # -> DeviceCredentials
    from vigil.shell.identity.devices import DeviceCredentials
    from vigil.shell.registry import Registry, load_roster

    settings = VigilSettings()
    if args.data_dir:
        settings.data_dir = Path(args.data_dir)
    roster = args.roster or settings.roster
    registry = Registry(load_roster(roster) if roster else None)
    url = settings.sqlite_url()
    if url.startswith("sqlite:///"):
        private_dir(Path(url.removeprefix("sqlite:///")).parent)
    return DeviceCredentials.open(url, registry)


def _enrol(args: argparse.Namespace) -> int:
    from vigil.shell.identity.devices import NotEnrollable

    store = _store(args)
    try:
        secret = store.enrol(args.device_id)
    except NotEnrollable as exc:
        print(f"vigil device enrol: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    # The one time the secret exists outside the device: on stdout only, never in a log.
    print(json.dumps({"device_id": args.device_id, "username": args.device_id, "password": secret}))
    print("Shown once: put it on the device now. Scaled broker: run `vigil device export-mosquitto` and reload it.",
          file=sys.stderr)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        revoked = store.revoke(args.device_id)
    finally:
        store.close()
    print(json.dumps({"device_id": args.device_id, "revoked": revoked}))
    if not revoked:
        print(f"vigil device revoke: {args.device_id} has no active credentials", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        for device in store.list():
            print(json.dumps({"device_id": device.device_id, "patient_id": device.patient_id,
                              "created_t": device.created_t, "revoked_t": device.revoked_t, "active": device.active}))
    finally:
        store.close()
    return 0


def kept_lines(path: Path, users: list[str]) -> dict[str, str]:
    """The lines of `users` (service accounts) in an existing Mosquitto password file, kept as they are."""
    if not users or not path.exists():
        return {}
    kept = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        user, _, hashed = line.partition(":")
        if user in users and hashed:
            kept[user] = hashed
    return kept


def _export(args: argparse.Namespace) -> int:
    from vigil.shell.mqtt.client_ids import is_service_client_id

    out = Path(args.out)
    services = [user for user in args.keep if is_service_client_id(user)]
    if services:  # on the device listeners they would log in with client id = username, a service's id
        print(f"vigil device export-mosquitto: {', '.join(services)}: service accounts go in the service listener's "
              "own password file, not the devices' (docs/security.md, \"Devices\")", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        text = store.mosquitto_password_file(kept_lines(out, args.keep))
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=".passwd-")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)  # atomic: a broker reloading now reads the old file or the new one
    print(json.dumps({"password_file": str(out), "users": text.count("\n")}))
    print("Now reload Mosquitto (SIGHUP) so that it reads the new file.", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    device = sub.add_parser("device", help="devices' MQTT credentials: enrol, revoke, list, export-mosquitto")
    commands = device.add_subparsers(dest="device_command", required=True)

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--roster", default=None, help="roster YAML (or VIGIL_ROSTER)")
        parser.add_argument("--data-dir", default=None, help="the embedded runtime's data dir (or VIGIL_DATA_DIR)")
        parser.set_defaults(func=func)
        return parser

    command("enrol", "new credentials for a device in the roster; prints the password once", _enrol) \
        .add_argument("device_id")
    command("revoke", "revoke a device's credentials", _revoke).add_argument("device_id")
    command("list", "devices with credentials (JSON lines)", _list)
    export = command("export-mosquitto", "write the device listeners' Mosquitto password file from the stored hashes",
                     _export)
    export.add_argument("--out", required=True, help="the device listeners' password_file (deploy/local: mosquitto/passwd)")
    export.add_argument("--keep", action="append", default=[],
                        help="keep this user's line from the existing file (never a service account: those have "
                             "their own file)")
