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
"""

from __future__ import annotations

import logging

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Engine

log = logging.getLogger("vigil.store")


def upgrade(engine: Engine, metadata: MetaData) -> list[str]:
    """Apply the additive and relaxing changes; return the statements run."""
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
    return statements + _add_indexes(engine, metadata, existing_tables)


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
