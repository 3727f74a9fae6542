"""`vigil user add|list|disable|password` and `vigil enrolment-code`: local accounts from the command line.

The first ward admin (or any account) is created here, on the store the runtime uses
(VIGIL_DATABASE_URL, or the SQLite file under VIGIL_DATA_DIR). A password comes from stdin
(`--password-stdin`) or is generated and printed once; it is never an argument (shell history,
process lists).
"""

from __future__ import annotations

import argparse
import sys

from vigil.core.identity import Role
from vigil.settings import VigilSettings
from vigil.shell.stores.private_files import private_dir


def _store():
    from vigil.shell.stores.sql import SqlStore

    settings = VigilSettings()
    private_dir(settings.data_dir)
    return settings, SqlStore(settings.database_url or settings.sqlite_url())


def _add(args: argparse.Namespace) -> int:
    from vigil.shell.identity.accounts import Accounts

    _, store = _store()
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    try:
        password_out = Accounts(store.engine).add(args.username, Role(args.role), display_name=args.name,
                                                  wards=args.ward or (), patients=args.patient or (), password=password)
    except ValueError as exc:
        print(f"vigil user add: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"user {args.username.strip().lower()} added ({args.role})")
    if password is None:
        print(f"password (shown once): {password_out}")
    return 0


def _list(_args: argparse.Namespace) -> int:
    from vigil.shell.identity.accounts import Accounts

    _, store = _store()
    try:
        for account in Accounts(store.engine).all():
            state = "disabled" if account.disabled else "active"
            print(f"{account.username}\t{account.role.value}\t{state}\twards={','.join(account.wards) or '-'}"
                  f"\tpatients={','.join(account.patients) or '-'}\t{account.display_name}")
    finally:
        store.close()
    return 0


def _disable(args: argparse.Namespace) -> int:
    from vigil.shell.identity.accounts import Accounts

    _, store = _store()
    try:
        found = Accounts(store.engine).disable(args.username)
    finally:
        store.close()
    print(f"user {args.username} disabled; their sessions ended" if found else f"no user {args.username}")
    return 0 if found else 1


def _password(args: argparse.Namespace) -> int:
    from vigil.shell.identity.accounts import Accounts

    _, store = _store()
    given = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    try:
        password = Accounts(store.engine).set_password(args.username, given)
    except ValueError as exc:
        print(f"vigil user password: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"password of {args.username} changed; their sessions ended")
    if given is None:
        print(f"password (shown once): {password}")
    return 0


def _enrolment_code(args: argparse.Namespace) -> int:
    from vigil.shell.identity.enrolment import EnrolmentCodes

    settings, store = _store()
    try:
        code = EnrolmentCodes(store.engine, ttl_s=settings.enrolment_code_ttl_s).issue(args.patient, "cli")
    finally:
        store.close()
    print(f"enrolment code for {args.patient} (one use, {int(settings.enrolment_code_ttl_s // 60)} min): {code}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="local accounts: add, list, disable, password")
    users = user.add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", help="create an account (the first ward admin, too)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role if r is not Role.SERVICE])
    add.add_argument("--name", help="display name (the audit trail shows it); default: the username")
    add.add_argument("--ward", action="append", help="a ward (nurse, physician, ward admin); repeat for more")
    add.add_argument("--patient", action="append", help="a patient id (patient: their own; caregiver: linked)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (else generated)")
    add.set_defaults(func=_add)
    users.add_parser("list", help="every account, without secrets").set_defaults(func=_list)
    disable = users.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(func=_disable)
    password = users.add_parser("password", help="set a new password (generated unless --password-stdin)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(func=_password)
    code = sub.add_parser("enrolment-code", help="a one-time code binding a patient's phone to that patient")
    code.add_argument("patient")
    code.set_defaults(func=_enrolment_code)
