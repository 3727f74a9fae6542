"""Back up and restore the scaled path's PostgreSQL database with PostgreSQL's own tools.

`pg_dump --format=custom` takes one consistent snapshot while the services keep writing (it runs
in a single repeatable-read transaction); `pg_restore --single-transaction --exit-on-error` loads
it into an empty database, all or nothing. The password goes to the tools in `PGPASSWORD`, never
on their command line (which `ps` shows to every user of the machine) nor in a log line.

A restore is refused when the target database already holds Vigil's tables: it never merges a
backup into live rows. Restore into a new database (or one you emptied) with every Vigil service
stopped.

A URL whose `options` set a `search_path` (`?options=-csearch_path%3Dward7`: one Vigil per
schema, as the tests run) backs up and restores that schema alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from vigil.shell.stores.backup import sha256_of

DUMP = "postgres.dump"


class PostgresBackupFailed(RuntimeError):
    """pg_dump/pg_restore failed or is missing, or the target database is not empty."""


def _schema(url: URL) -> str | None:
    """The schema a `-csearch_path=...` option puts first, if any."""
    options = url.query.get("options") or ""
    options = options if isinstance(options, str) else " ".join(options)
    for option in options.split():
        if option.startswith("-csearch_path="):
            return option.split("=", 1)[1].split(",")[0].strip() or None
    return None


def _libpq(database_url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for the tools and the environment carrying the password."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise PostgresBackupFailed("not a PostgreSQL URL")
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 5432}", f"--dbname={url.database}"]
    if url.username:
        args.append(f"--username={url.username}")
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PostgresBackupFailed(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise PostgresBackupFailed(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")



def dump_database(database_url: str, out_dir: Path) -> dict:
    """pg_dump the database into `out_dir/postgres.dump`; its size and SHA-256 for the manifest."""
    args, env = _libpq(database_url)
    schema = _schema(make_url(database_url))
    if schema:
        args.append(f"--schema={schema}")
    target = out_dir / DUMP
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={target}", *args], env,
         "pg_dump")
    return {"file": DUMP, "bytes": target.stat().st_size, "sha256": sha256_of(target)}


def vigil_tables(database_url: str) -> list[str]:
    """The tables in Vigil's schema (the URL's search_path schema, else `public`)."""
    schema = _schema(make_url(database_url)) or "public"
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                                     {"s": schema}).scalars())
    finally:
        engine.dispose()


def restore_database(database_url: str, from_dir: Path, entry: dict) -> dict:
    """pg_restore the dump into an empty database, in one transaction."""
    source = from_dir / entry["file"]
    if not source.is_file() or sha256_of(source) != entry["sha256"]:
        raise PostgresBackupFailed(f"{source.name} is missing or does not match its SHA-256")
    present = vigil_tables(database_url)
    if present:
        raise PostgresBackupFailed(f"the database is not empty ({len(present)} tables, e.g. {sorted(present)[0]}): "
                                   "restore into a new or emptied database")
    args, env = _libpq(database_url)
    # With a schema, the dump recreates it: drop the (verified empty) schema first.
    clean = ["--clean", "--if-exists"] if _schema(make_url(database_url)) else []
    _run([_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", *clean,
          *args, str(source)], env, "pg_restore")
    return {"tables": len(vigil_tables(database_url))}
