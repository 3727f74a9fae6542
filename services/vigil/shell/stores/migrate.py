"""Bring an existing database up to the tables this version declares, without losing data.

`create_all` only creates missing tables; a store created by an earlier version keeps its old
columns. On start-up every store therefore:

- adds each declared column the table lacks (nullable, so existing rows stay valid);
- creates each declared index the table lacks (the dead-letter purge's, for one);
- relaxes each column the table has but this version no longer declares, so inserts that do
  not name it still work: PostgreSQL drops its NOT NULL (the data stays); SQLite, which cannot
  change a column's nullability, drops the column (`ALTER TABLE … DROP COLUMN`, SQLite ≥ 3.35).

Every change is logged. Changing a column's type or a key is not attempted: that needs a
written migration, and start-up fails loudly rather than guess.

Tables marked `info={"append_only": True}` (the access audit) get triggers that make the database
itself refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), installed when missing. Retention
(SQLite and PostgreSQL alike): given `keep_days`, the DELETE trigger refuses only rows younger than
that (never younger than MIN_AUDIT_DAYS, whatever is asked), the age taken from the row's `aged_by`
column and the database's own clock; UPDATE (and TRUNCATE) stay refused always. 0 keeps every row
(DELETE always refused). Changing the window replaces the trigger, logged as a WARNING; `keep_days`
None (a service that does not purge) installs a missing trigger refusing every DELETE and leaves an
installed one as it is. On PostgreSQL the DELETE check is a row trigger (it needs each row's age);
UPDATE and TRUNCATE are refused by a statement trigger.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from vigil.settings import MIN_AUDIT_DAYS

log = logging.getLogger("vigil.store")


def upgrade(engine: Engine, metadata: MetaData, keep_days: float | None = None) -> list[str]:
    """Apply the additive and relaxing changes; return the statements run.

    Services start together against one PostgreSQL (a gateway and two workers): two of them may
    both see a column missing and both add it, and the second fails (`DuplicateColumn`; SQLite:
    "duplicate column name"). The loser looks again, once, and finds nothing left to do."""
    try:
        return _upgrade(engine, metadata, keep_days)
    except DBAPIError as exc:
        log.info("store schema upgraded by another process at the same time; looking again",
                 extra={"error": type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__})
        return _upgrade(engine, metadata, keep_days)


def _upgrade(engine: Engine, metadata: MetaData, keep_days: float | None) -> list[str]:
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    preparer = engine.dialect.identifier_preparer
    statements: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {column["name"]: column for column in inspector.get_columns(table.name)}
        name = preparer.quote(table.name)
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=engine.dialect)
                statements.append(f"ALTER TABLE {name} ADD COLUMN {preparer.quote(column.name)} {kind}")
        declared = {column.name for column in table.columns}
        for column_name, column in have.items():
            if column_name in declared or column["nullable"]:
                continue
            quoted = preparer.quote(column_name)
            if engine.dialect.name == "postgresql":
                statements.append(f"ALTER TABLE {name} ALTER COLUMN {quoted} DROP NOT NULL")
            else:
                statements.append(f"ALTER TABLE {name} DROP COLUMN {quoted}")
    if statements:
        with engine.begin() as conn:
            for statement in statements:
                log.warning("store schema upgraded", extra={"statement": statement})
                conn.execute(text(statement))
    return statements + _add_indexes(engine, metadata, existing_tables) + append_only(engine, metadata, keep_days)


def _add_indexes(engine: Engine, metadata: MetaData, existing_tables: set[str]) -> list[str]:
    """Create the declared indexes that tables made by an earlier version lack."""
    inspector = inspect(engine)
    created = []
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in have:
                with engine.begin() as conn:
                    index.create(conn, checkfirst=True)
                log.warning("store index added", extra={"index": index.name})
                created.append(f"CREATE INDEX {index.name}")
    return created


# PostgreSQL: one function refuses every change; each append-only table's trigger calls it.
_PG_REFUSE = (
    "CREATE OR REPLACE FUNCTION vigil_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$"
)
# A row's DELETE: refused unless the row's TG_ARGV[0] column (epoch seconds) is older than TG_ARGV[1]
# seconds by the database's clock; TG_ARGV[1] = 0 refuses every DELETE.
_PG_REFUSE_YOUNG = (
    "CREATE OR REPLACE FUNCTION vigil_refuse_young_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_ARGV[1]::double precision <= 0 OR TG_ARGV[0] = '' OR (to_jsonb(OLD) ->> TG_ARGV[0])::double precision "
    ">= extract(epoch from clock_timestamp()) - TG_ARGV[1]::double precision THEN "
    "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: DELETE refused (younger than its retention)'; "
    "END IF; RETURN OLD; END $$"
)
_PG_LOCK = 0x5649_4749  # pg_advisory_xact_lock key: two processes starting at once install the triggers once


def _sqlite_trigger(table: str, operation: str, aged_by: str | None, keep_days: float) -> str:
    """An append-only table's trigger: refuse `operation`; a DELETE only of rows younger than
    keep_days (at least MIN_AUDIT_DAYS) when the table is `aged_by` a time column and keep_days > 0."""
    name = f"{table}_no_{operation.lower()}"
    when = ""
    if operation == "DELETE" and aged_by and keep_days > 0:
        keep_s = _keep_s(aged_by, keep_days)
        when = f" WHEN OLD.\"{aged_by}\" >= (julianday('now') - 2440587.5) * 86400.0 - {keep_s:.0f}"
    return (f'CREATE TRIGGER "{name}" BEFORE {operation} ON "{table}"{when} '
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END")


def _pg_triggers_in_place(engine: Engine, aged_by: dict[str, str | None], keep_days: float | None) -> bool:
    """Both refusing functions and every append-only table's two triggers exist as `_pg_triggers`
    would make them (read from the catalog, which any role may read): then a service's role, which
    may not create anything, has nothing to do."""
    with engine.connect() as conn:
        for function in ("vigil_refuse_change", "vigil_refuse_young_delete"):
            if conn.execute(text("SELECT to_regproc(:f)"), {"f": function}).scalar() is None:
                return False
        for table, aged in aged_by.items():
            definitions = dict(conn.execute(text("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                                                 "WHERE tgrelid = to_regclass(:t)"), {"t": table}).all())
            statement, row = definitions.get(f"{table}_append_only"), definitions.get(f"{table}_delete_retention")
            if statement is None or "DELETE" in statement or row is None:
                return False
            if keep_days is not None and not row.endswith(_row_trigger_arguments(aged, keep_days)):
                return False
    return True


def _keep_s(aged_by: str | None, keep_days: float) -> float:
    """Seconds a row is kept from DELETE: 0 refuses every DELETE (no age column, or kept forever)."""
    return max(keep_days, MIN_AUDIT_DAYS) * 86400.0 if aged_by and keep_days > 0 else 0.0


def _row_trigger_arguments(aged_by: str | None, keep_days: float) -> str:
    """The row trigger's arguments as PostgreSQL prints them: the age column and the seconds kept."""
    return f"('{aged_by or ''}', '{_keep_s(aged_by, keep_days):.0f}')"


def _pg_triggers(conn: Any, table: str, aged_by: str | None, keep_days: float | None) -> list[str]:
    """PostgreSQL: a statement trigger refusing UPDATE and TRUNCATE, and a row trigger refusing the
    DELETE of a row younger than the retention (module docstring). A database made by an earlier
    version, whose statement trigger refused DELETE too, has it replaced in the same transaction."""
    def definition(name: str) -> str | None:
        return conn.execute(text("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(:t) "
                                 "AND tgname = :n"), {"t": table, "n": name}).scalar()

    created: list[str] = []
    statement, row = f"{table}_append_only", f"{table}_delete_retention"
    have = definition(statement)
    if have is None or "DELETE" in have:
        conn.execute(text(f'CREATE OR REPLACE TRIGGER "{statement}" BEFORE UPDATE OR TRUNCATE ON "{table}" '
                          "FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_change()"))
        created.append(statement)
    arguments = _row_trigger_arguments(aged_by, keep_days or 0.0)
    have = definition(row)
    if have is not None and (keep_days is None or have.endswith(arguments)):
        return created
    if have is not None:
        log.warning("store trigger replaced: audit retention changed", extra={"trigger": row, "keep_days": keep_days})
    conn.execute(text(f'CREATE OR REPLACE TRIGGER "{row}" BEFORE DELETE ON "{table}" '
                      f"FOR EACH ROW EXECUTE FUNCTION vigil_refuse_young_delete{arguments}"))
    return created + [row]


def append_only(engine: Engine, metadata: MetaData, keep_days: float | None = None) -> list[str]:
    """Install the triggers that refuse UPDATE and DELETE on append-only tables; return those created.
    `keep_days`: the retention window of DELETE (module docstring); None leaves an
    installed trigger as it is."""
    aged_by = {t.name: t.info.get("aged_by") for t in metadata.sorted_tables if t.info.get("append_only")}
    tables = list(aged_by)
    if not tables:
        return []
    created: list[str] = []
    if engine.dialect.name == "postgresql" and _pg_triggers_in_place(engine, aged_by, keep_days):
        return created  # nothing to install: a service's role, which may not create anything, passes here
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            conn.execute(text(_PG_REFUSE))
            conn.execute(text(_PG_REFUSE_YOUNG))
        for table in tables:
            if engine.dialect.name == "postgresql":
                created += _pg_triggers(conn, table, aged_by[table], keep_days)
                continue
            for operation in ("UPDATE", "DELETE"):
                name = f"{table}_no_{operation.lower()}"
                wanted = _sqlite_trigger(table, operation, aged_by[table], keep_days or 0.0)
                have = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                    {"n": name}).scalar()
                if have is not None and (keep_days is None or have == wanted):
                    continue
                if have is not None:
                    conn.execute(text(f'DROP TRIGGER "{name}"'))
                    log.warning("store trigger replaced: audit retention changed", extra={"trigger": name,
                                                                                          "keep_days": keep_days})
                conn.execute(text(wanted))
                created.append(name)
    for name in created:
        log.info("store trigger added", extra={"trigger": name})
    return created
