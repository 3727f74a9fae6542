"""The trend contract (tests/trends_contract.py) on the embedded store: SQLite, rollups written
with the readings by SqlStore.write."""

from __future__ import annotations

import pytest

import trends_contract as contract


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    ward = contract.SqlWard(f"sqlite:///{tmp_path_factory.mktemp('trends') / 'vigil.db'}")
    ward.data = contract.stored(ward)
    yield ward
    ward.sql.close()


def test_series_equal_the_rows_for_every_vital_and_step(ward):
    contract.check_series_equal_the_rows(ward, ward.data)


def test_series_equal_the_raw_scan(ward):
    contract.check_series_equal_the_raw_scan(ward)


def test_a_dip_shows_as_a_minimum(ward):
    contract.check_a_dip_shows_as_a_minimum(ward)


def test_news2_buckets_say_partial(ward):
    contract.check_news2_buckets_say_partial(ward)


def test_latest(ward):
    contract.check_latest(ward, ward.data)


def test_ward(ward):
    contract.check_ward(ward)


def test_refusals(ward):
    contract.check_refusals(ward)
