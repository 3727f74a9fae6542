"""Two services upgrading one store at the same moment (a gateway and two workers starting against
the same PostgreSQL; seen in a test run: `DuplicateColumn` on `access_audit.patients`): both see
the column missing, the first adds it, the second's ALTER fails. It must look again, not crash."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, inspect

from vigil.shell.stores.migrate import upgrade


def test_a_store_upgraded_by_another_process_at_the_same_moment_is_looked_at_again(tmp_path):
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE visits (id INTEGER PRIMARY KEY)")
    metadata = MetaData()
    Table("visits", metadata, Column("id", Integer, primary_key=True), Column("ward", String(32)))
    engine = create_engine(f"sqlite:///{path}")
    raced: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def the_other_process_gets_there_first(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.startswith("ALTER TABLE") and not raced:
            raced.append(statement)
            with sqlite3.connect(path) as other:  # another process, between our look and our ALTER
                other.execute(statement)

    assert upgrade(engine, metadata) == [], "the second look finds nothing left to do"
    assert raced == ['ALTER TABLE visits ADD COLUMN ward VARCHAR(32)']
    assert [c["name"] for c in inspect(engine).get_columns("visits")] == ["id", "ward"]
