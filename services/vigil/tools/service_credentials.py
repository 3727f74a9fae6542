"""Each service process of the scaled path gets its own store credentials, and only those.

deploy/local (and an operator's own deployment) names each service's credentials beside the owner's:
`VIGIL_<SERVICE>_DATABASE_URL_FILE`, `VIGIL_<SERVICE>_INFLUX_TOKEN_FILE` (or the values themselves,
without `_FILE`). A service reads only `VIGIL_DATABASE_URL` and `VIGIL_INFLUX_TOKEN` (or their `_FILE`,
vigil.settings), so its environment is the shared one with every store credential taken out and its
own put in under those names. The owner's (`VIGIL_DATABASE_URL`, the operator token) never reach a
service. A service with no credential of its own for a store gets none (the gateway: neither).
"""

from __future__ import annotations

from collections.abc import Mapping

STORE_SECRETS = ("DATABASE_URL", "INFLUX_TOKEN")
# `vigil <command>` -> the service whose credentials it runs with.
SERVICE_OF_COMMAND = {"ingest": "gateway", "processor": "processor", "notifier": "notifier"}
# What each service needs, to refuse a start that would quietly fall back to something else: with the
# owner's database configured, a processor without a URL of its own would write its alerts to a local
# SQLite file.
NEEDED = {"gateway": (), "processor": ("DATABASE_URL", "INFLUX_TOKEN"), "notifier": ("DATABASE_URL",)}


class MissingCredentials(RuntimeError):
    """A service's own credentials are not in the environment (an install from before they existed)."""


def service_env(env: Mapping[str, str], service: str) -> dict[str, str]:
    """`env` as `service` must see it: no store credential but its own, as VIGIL_DATABASE_URL(_FILE)
    and VIGIL_INFLUX_TOKEN(_FILE). A value given directly wins over a file (a test's own schema)."""
    # Out: the owner's and every service's (VIGIL_DATABASE_URL, VIGIL_GRAFANA_INFLUX_TOKEN_FILE, ...).
    secrets = tuple(f"{secret}{suffix}" for secret in STORE_SECRETS for suffix in ("", "_FILE"))
    out = {key: value for key, value in env.items() if not (key.startswith("VIGIL_") and key.endswith(secrets))}
    prefix = f"VIGIL_{service.upper()}_"
    for secret in STORE_SECRETS:
        if env.get(prefix + secret):
            out[f"VIGIL_{secret}"] = env[prefix + secret]
        elif env.get(prefix + secret + "_FILE"):
            out[f"VIGIL_{secret}_FILE"] = env[prefix + secret + "_FILE"]
    missing = [secret for secret in NEEDED.get(service, ()) if f"VIGIL_{secret}" not in out
               and f"VIGIL_{secret}_FILE" not in out and (env.get(f"VIGIL_{secret}") or env.get(f"VIGIL_{secret}_FILE"))]
    if missing:
        names = ", ".join(f"{prefix}{secret}_FILE" for secret in missing)
        raise MissingCredentials(f"{service} has no credentials of its own ({names} unset): re-run deploy/local/up, "
                                 "which creates each service's role and token (docs/security.md)")
    return out
