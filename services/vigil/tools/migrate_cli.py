"""`vigil migrate`: create or upgrade the store's tables, then give each service role its rights.

Run it as the schema's owner (VIGIL_DATABASE_URL naming the owner role) at installation and after
every upgrade of Vigil, before the services start: the services log in with roles that may not
create or alter anything (shell/stores/grants.py), so they refuse to start on a schema older than
themselves. On SQLite it only creates and upgrades (there are no roles).
"""

from __future__ import annotations

import argparse
import json


def _role(value: str) -> tuple[str, str]:
    from vigil.shell.stores.grants import SERVICE_GRANTS

    service, _, role = value.partition("=")
    if service not in SERVICE_GRANTS or not role:
        raise argparse.ArgumentTypeError(f"expected SERVICE=ROLE with SERVICE one of {', '.join(SERVICE_GRANTS)}")
    return service, role


def _migrate(args: argparse.Namespace) -> int:
    from vigil.settings import VigilSettings
    from vigil.shell.observability.logs import configure_logging
    from vigil.shell.stores.grants import DEFAULT_ROLES, grant
    from vigil.shell.stores.private_files import private_dir
    from vigil.shell.stores.sql import SqlStore

    settings = VigilSettings()
    configure_logging(settings.log_level)
    if not settings.database_url:
        private_dir(settings.data_dir)
    store = SqlStore(settings.database_url or settings.sqlite_url(), audit_keep_days=settings.retain_audit_days)
    try:
        granted = grant(store.engine, {**DEFAULT_ROLES, **dict(args.role or [])})
    finally:
        store.close()
    print(json.dumps({"schema": "current", "granted": granted}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    migrate = sub.add_parser("migrate", help="create or upgrade the tables (as their owner) and grant each service "
                             "role its rights (VIGIL_DATABASE_URL; docs/security.md, 'Service credentials')")
    migrate.add_argument("--role", action="append", type=_role, metavar="SERVICE=ROLE",
                         help="the role of a service (processor, notifier, grafana); default vigil_<service>")
    migrate.set_defaults(func=_migrate)
