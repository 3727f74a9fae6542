"""What each service of the scaled path may do to each PostgreSQL table: least privilege, in one table.

The schema belongs to one owner role (deploy/local: `vigil`), which alone creates and alters tables
(`vigil migrate`), runs the tools (`vigil user`, `vigil device`, `vigil audit export`) and would run
a purge. Each service logs in with its own role and gets exactly the statements its code runs
(docs/security.md, "Service credentials"):

- the processor workers raise alerts: they look up which alert ids are stored, upsert alert rows
  and add alert events. Readings and scores go to InfluxDB and, for the ward overview
  (VIGIL_WARD_TRENDS_SQL), to `readings` and `scores` with their rollups (`vital_rollups`,
  `vital_latest`: upserts); dead letters go to Kafka: no table there.
- the notifier is the alert desk and the HTTP API of the scaled path in one process: incidents,
  their audit trail, the desk's inbox, the outbox and explanations; logins (reads accounts, keeps
  sessions and enrolment codes); it reads alerts, and only appends to the access audit.
- Grafana reads the three tables of the alert annotations (docs/dashboards.md) and nothing else.
- the gateway touches no table (Kafka only): it gets no role at all.

No service may UPDATE, DELETE or TRUNCATE the access audit (its triggers refuse even the owner,
migrate.append_only), nor read it: the export is an owner's tool. `grant` revokes everything
first, so a right taken out of this table is taken from the role at the next `vigil migrate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.engine import Engine

from vigil.shell.stores.tables import metadata

log = logging.getLogger("vigil.store")

S, I, U, D = "SELECT", "INSERT", "UPDATE", "DELETE"

SERVICE_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "processor": {
        "alerts": (S, I, U),  # known_alerts, then the upsert (ON CONFLICT DO UPDATE needs UPDATE, and SELECT)
        "alert_events": (I,),
        # The ward's trends (shell/trends/hybrid_trends.py): insert … on conflict do nothing RETURNING
        # (RETURNING needs SELECT), then the rollups' and latest values' upserts.
        "readings": (S, I),
        "scores": (S, I),
        "vital_rollups": (S, I, U),
        "vital_latest": (S, I, U),
    },
    "notifier": {
        "alerts": (S,),
        "incidents": (S, I, U),
        "incident_alerts": (S, I),
        "incident_audit": (S, I),
        "desk_inbox": (S, I),
        "outbox": (S, I, U),  # claimed, then marked sent, failed or dropped; never deleted here
        "explanations": (S, I, U),
        "users": (S,),  # logins check passwords; accounts are changed only by `vigil user` (owner)
        "sessions": (S, I, U, D),
        "enrolment_codes": (S, I, U),
        "vital_rollups": (S,),  # the ward overview's sparklines and latest values (HybridTrends)
        "vital_latest": (S,),
        "access_audit": (I,),  # append only: no SELECT (the export is the owner's), no UPDATE or DELETE
    },
    "grafana": {
        "alerts": (S,),
        "incidents": (S,),
        "incident_audit": (S,),
    },
}

# The roles deploy/local creates; another installation names its own (`vigil migrate --role`).
DEFAULT_ROLES = {"processor": "vigil_processor", "notifier": "vigil_notifier", "grafana": "vigil_grafana"}


def grant(engine: Engine, roles: Mapping[str, str] | None = None) -> dict[str, str]:
    """Give each existing service role exactly its rights on the tables of the current schema.

    Run by the schema's owner after the tables exist (`vigil migrate`). A role that does not exist
    is skipped (logged): the database administrator creates the login roles, with their passwords.
    Returns service -> role for the roles granted. PostgreSQL only; SQLite has no roles."""
    if engine.dialect.name != "postgresql":
        return {}
    roles = dict(DEFAULT_ROLES if roles is None else roles)
    tables = [table.name for table in metadata.sorted_tables]
    done: dict[str, str] = {}
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        existing = {name for (name,) in conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                                                       {"names": list(roles.values())})}
        present = {name for (name,) in conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))}
        for service, role in roles.items():
            if role not in existing:
                log.warning("no such role: not granted", extra={"service": service, "role": role})
                continue
            quoted_role = _quote(role)
            conn.execute(text(f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {quoted_role}"))
            conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {_quote(schema)} FROM {quoted_role}"))
            for table in tables:
                if table in present:
                    conn.execute(text(f"REVOKE ALL ON {_quote(table)} FROM {quoted_role}"))
            for table, actions in SERVICE_GRANTS[service].items():
                conn.execute(text(f"GRANT {', '.join(actions)} ON {_quote(table)} TO {quoted_role}"))
                if I in actions:  # a serial id (access_audit.id) draws from its sequence
                    for (sequence,) in conn.execute(text(
                            "SELECT pg_get_serial_sequence(:t, a.attname) FROM pg_attribute a "
                            "WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped"), {"t": table}):
                        if sequence:
                            conn.execute(text(f"GRANT USAGE ON SEQUENCE {sequence} TO {quoted_role}"))
            done[service] = role
            log.info("store rights granted", extra={"service": service, "role": role, "schema": schema})
    return done


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
