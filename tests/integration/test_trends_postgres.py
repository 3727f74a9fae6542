"""The trend contract (tests/trends_contract.py) on PostgreSQL: the embedded runtime's store when
`VIGIL_DATABASE_URL` is set. Same SqlStore and SqlTrends as SQLite, through SQLAlchemy's statements
(RETURNING with executemany), in a schema of its own that is dropped afterwards."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

import trends_contract as contract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ward(servers):
    url = servers["VIGIL_DATABASE_URL"]
    schema = "trends_" + uuid.uuid4().hex[:8]
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    ward = contract.SqlWard(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    try:
        ward.data = contract.stored(ward)
        yield ward
    finally:
        ward.sql.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_series_equal_the_rows_for_every_vital_and_step(ward):
    contract.check_series_equal_the_rows(ward, ward.data)


def test_series_equal_the_raw_scan(ward):
    contract.check_series_equal_the_raw_scan(ward)


def test_news2_buckets_say_partial(ward):
    contract.check_news2_buckets_say_partial(ward)


def test_latest(ward):
    contract.check_latest(ward, ward.data)


def test_ward(ward):
    contract.check_ward(ward)
