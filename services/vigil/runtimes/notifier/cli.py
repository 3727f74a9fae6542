"""`vigil notifier`: the scaled mode's alert desk (incidents, notifications, the incident API)."""

from __future__ import annotations

import argparse
import asyncio


def _notifier(args: argparse.Namespace) -> int:
    from vigil.runtimes.notifier.notifier import serve_notifier
    from vigil.settings import service_settings
    from vigil.shell.observability.logs import configure_logging

    settings = service_settings(args)
    configure_logging(settings.log_level)
    return asyncio.run(serve_notifier(settings))


def register(sub: argparse._SubParsersAction) -> None:
    notifier = sub.add_parser("notifier", help="incidents and notifications for the scaled mode (reads vigil.alerts; "
                              "VIGIL_DATABASE_URL, VIGIL_KAFKA_BOOTSTRAP, channel settings)")
    notifier.add_argument("--roster", help="roster YAML (default VIGIL_ROSTER)")
    notifier.add_argument("--http-port", type=int, help="API, /healthz, /metrics (default VIGIL_HTTP_PORT)")
    notifier.set_defaults(func=_notifier)
