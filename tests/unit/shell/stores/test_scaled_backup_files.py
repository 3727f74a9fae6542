"""The scaled backup's local guards, before any server is asked: a damaged or foreign backup is
refused, and the database password never reaches the tools' command line."""

from __future__ import annotations

import hashlib
import json

import pytest

from vigil.shell.stores.influx_backup import MANIFEST, InfluxBackupFailed, InfluxServer, restore_bucket
from vigil.shell.stores.pg_backup import PostgresBackupFailed, _libpq, _schema, restore_database
from sqlalchemy.engine import make_url

NOWHERE = InfluxServer("http://127.0.0.1:9", "token", "vigil")  # discard port: any request would fail differently


def write_backup(tmp_path, payload: bytes = b"shard bytes") -> None:
    (tmp_path / "shard-7.tar.gz").write_bytes(payload)
    manifest = {"kind": "vigil-influx-bucket-backup", "version": 1, "org": "vigil", "bucket": "vitals", "metadata": {},
                "shards": {"7": {"file": "shard-7.tar.gz", "bytes": len(payload),
                                 "sha256": hashlib.sha256(payload).hexdigest()}}}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))


def test_a_shard_changed_after_the_backup_is_refused_before_the_server_is_asked(tmp_path):
    write_backup(tmp_path)
    (tmp_path / "shard-7.tar.gz").write_bytes(b"shard bytEs")
    with pytest.raises(InfluxBackupFailed, match="does not match its SHA-256"):
        restore_bucket(NOWHERE, tmp_path)


def test_a_missing_shard_or_a_foreign_manifest_is_refused(tmp_path):
    write_backup(tmp_path)
    (tmp_path / "shard-7.tar.gz").unlink()
    with pytest.raises(InfluxBackupFailed, match="missing"):
        restore_bucket(NOWHERE, tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"kind": "something-else", "version": 1}))
    with pytest.raises(InfluxBackupFailed, match="not a Vigil InfluxDB bucket backup"):
        restore_bucket(NOWHERE, tmp_path)


def test_a_damaged_database_dump_is_refused_before_the_database_is_touched(tmp_path):
    (tmp_path / "postgres.dump").write_bytes(b"dump")
    entry = {"file": "postgres.dump", "sha256": hashlib.sha256(b"dumq").hexdigest()}
    with pytest.raises(PostgresBackupFailed, match="does not match"):
        restore_database("postgresql+psycopg://v:pw@127.0.0.1:9/vigil", tmp_path, entry)


def test_the_password_goes_to_the_environment_not_the_command_line():
    args, env = _libpq("postgresql+psycopg://vigil:s3cret%21@db.example:6543/vigil")
    assert not any("s3cret" in a for a in args)
    assert env["PGPASSWORD"] == "s3cret!"
    assert "--host=db.example" in args and "--port=6543" in args and "--dbname=vigil" in args


def test_a_search_path_option_names_the_schema_backed_up():
    assert _schema(make_url("postgresql+psycopg://v@h/d?options=-csearch_path%3Dward7")) == "ward7"
    assert _schema(make_url("postgresql+psycopg://v@h/d")) is None
