"""Alerts and what the ward did about them, as Grafana annotations on the patient's trends.

Alerts, incidents and their audit trail live in PostgreSQL (the scaled path's `alerts`,
`incidents` and `incident_audit` tables; services/vigil/shell/stores/tables.py), not in
InfluxDB, so the annotations are SQL on a second, read-only data source (`vigil-postgres`,
type `postgres`: the id Grafana 10 uses, and Grafana 11 keeps as an alias of its
`grafana-postgresql-datasource`):

- **Alerts**: each alert from when it was raised to when it cleared (a shaded region; a point
  while it is still open), with its severity, kind and rule.
- **Ward response**: every acknowledgement, escalation and resolution of the patient's
  incidents, with who did it and, for a resolution, the outcome.

The patient comes from the dashboard variable through Grafana's `sqlstring` format, which
quotes it and doubles any `'`: a crafted `var-patient` in a URL stays a string. Grafana's
`$__unixEpochFrom()` / `$__unixEpochTo()` are the time range in epoch seconds, the unit of
the `*_t` columns. tests/integration/test_dashboard_annotations.py runs both on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

POSTGRES_UID = "vigil-postgres"
POSTGRES = {"type": "postgres", "uid": POSTGRES_UID}

ALERTS_SQL = """SELECT to_timestamp(a.raised_t) AS "time",
       to_timestamp(COALESCE(a.cleared_t, a.raised_t)) AS timeend,
       upper(a.severity) || ' alert: ' || a.kind || ' (' || a.rule || ')'
         || CASE WHEN a.cleared_t IS NULL THEN ', still open' ELSE ', cleared' END AS text,
       'alert,' || a.severity || ',' || a.category AS tags
FROM alerts a
WHERE a.patient_id = ${patient:sqlstring}
  AND a.raised_t <= $__unixEpochTo()
  AND COALESCE(a.cleared_t, a.raised_t) >= $__unixEpochFrom()
ORDER BY a.raised_t"""

RESPONSE_EVENTS = ("acknowledged", "escalated", "resolved", "auto_resolved")

RESPONSES_SQL = """SELECT to_timestamp(u.t) AS "time",
       initcap(replace(u.event, '_', ' ')) || ' by ' || u.actor
         || ' (' || i.severity || ' incident ' || u.incident_id || ')'
         || CASE WHEN u.event = 'resolved' AND i.resolution IS NOT NULL THEN ': ' || i.resolution ELSE '' END AS text,
       u.event || ',' || i.severity AS tags
FROM incident_audit u JOIN incidents i ON i.incident_id = u.incident_id
WHERE i.patient_id = ${patient:sqlstring}
  AND u.event IN (""" + ", ".join(f"'{e}'" for e in RESPONSE_EVENTS) + """)
  AND u.t BETWEEN $__unixEpochFrom() AND $__unixEpochTo()
ORDER BY u.t"""


def _sql_annotation(name: str, colour: str, sql: str) -> dict[str, Any]:
    return {
        "name": name, "datasource": POSTGRES, "enable": True, "hide": False, "iconColor": colour,
        "target": {"refId": "Anno", "datasource": POSTGRES, "editorMode": "code", "format": "table",
                   "rawQuery": True, "rawSql": sql},
    }


def patient_annotations() -> dict[str, Any]:
    """The patient dashboard's annotation list: Grafana's own, then alerts and the ward's responses."""
    return {"list": [
        {"builtIn": 1, "name": "Annotations & Alerts", "type": "dashboard", "enable": True, "hide": True,
         "iconColor": "rgba(0, 211, 255, 1)", "datasource": {"type": "grafana", "uid": "-- Grafana --"}},
        _sql_annotation("Alerts", "red", ALERTS_SQL),
        _sql_annotation("Acknowledged / escalated / resolved", "blue", RESPONSES_SQL),
    ]}


def annotation_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(annotation name, SQL) for every SQL annotation of a dashboard."""
    return [(a["name"], a["target"]["rawSql"]) for a in dashboard.get("annotations", {}).get("list", [])
            if "target" in a and "rawSql" in a["target"]]


def postgres_datasource(host_port: str, database: str, user: str, password: str,
                        sslmode: str = "require") -> dict[str, Any]:
    """The PostgreSQL data source of the annotations. Give it a role that may only SELECT
    `alerts`, `incidents` and `incident_audit` (docs/dashboards.md): Grafana runs whatever SQL
    a dashboard editor writes."""
    return {
        "uid": POSTGRES_UID, "name": "Vigil PostgreSQL", "type": "postgres", "access": "proxy",
        "url": host_port, "user": user, "database": database, "isDefault": False,
        "jsonData": {"database": database, "sslmode": sslmode, "postgresVersion": 1500, "timescaledb": False},
        "secureJsonData": {"password": password},
    }
