"""Per-minute rollups written with the readings: equal to a scan of the raw rows, whatever is
replayed, duplicated or late, and in the readings' own transaction."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from vigil.shell.stores import tables
from vigil.shell.stores.rollups import minute_of
from vigil.shell.stores.rows import ReadingRow, ScoreRow
from vigil.shell.stores.sql import SqlStore, WriteBatch

T0 = 1_760_000_040.0  # a minute boundary


def reading(t: float, patient: str = "pt-1", device: str = "dev-1", hr: float | None = 70.0, **values) -> ReadingRow:
    return ReadingRow(patient, device, t, int(t), hr=hr, **values)


def rollup(store: SqlStore, patient: str = "pt-1") -> dict[float, dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(tables.vital_rollups).where(tables.vital_rollups.c.patient_id == patient))
        return {row._mapping["t"]: dict(row._mapping) for row in rows}


def latest(store: SqlStore, patient: str = "pt-1") -> dict[str, tuple]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(tables.vital_latest).where(tables.vital_latest.c.patient_id == patient))
        return {m["vital"]: (m["t"], m["value"], m["partial"]) for m in (r._mapping for r in rows)}


def raw_scan(store: SqlStore, patient: str = "pt-1") -> dict[float, dict]:
    """What the rollup must equal: every stored reading of the patient, folded per minute here."""
    expected: dict[float, dict] = {}
    for row in store.readings_for(patient):
        minute = expected.setdefault(minute_of(row["t"]), {"readings_n": 0})
        minute["readings_n"] += 1
        for vital in ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2"):
            if row[vital] is not None:
                values = minute.setdefault(vital, [])
                values.append(row[vital])
    return expected


def assert_rollup_equals_raw(store: SqlStore, patient: str = "pt-1") -> None:
    stored, expected = rollup(store, patient), raw_scan(store, patient)
    assert set(stored) == set(expected)
    for minute, want in expected.items():
        got = stored[minute]
        assert got["readings_n"] == want["readings_n"]
        for vital in ("hr", "spo2", "rr", "temp", "sbp", "dbp", "news2"):
            values = want.get(vital, [])
            assert got[f"{vital}_n"] == len(values), (minute, vital)
            if values:
                assert got[f"{vital}_min"] == min(values) and got[f"{vital}_max"] == max(values)
                assert got[f"{vital}_sum"] == pytest.approx(sum(values))


@pytest.fixture
def store(tmp_path):
    s = SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    yield s
    s.close()


def test_one_minute_of_readings_becomes_one_row_with_min_max_sum_count(store):
    store.write(WriteBatch(readings=[reading(T0 + 1, hr=70.0, spo2=97.0, news2=1, news2_partial=True),
                                     reading(T0 + 2, hr=90.0, spo2=91.0, news2=3, news2_partial=False),
                                     reading(T0 + 61, hr=80.0, flags="motion")]))
    rows = rollup(store)
    first, second = rows[T0], rows[T0 + 60]
    assert (first["hr_min"], first["hr_max"], first["hr_sum"], first["hr_n"]) == (70.0, 90.0, 160.0, 2)
    assert (first["spo2_min"], first["spo2_max"], first["spo2_n"]) == (91.0, 97.0, 2)
    assert (first["news2_max"], first["news2_partial_n"], first["readings_n"]) == (3.0, 1, 2)
    assert first["rr_n"] == 0 and first["rr_min"] is None and first["flagged_n"] == 0
    assert (second["hr_n"], second["flagged_n"], second["spo2_n"]) == (1, 1, 0)


def test_a_reading_written_twice_is_counted_once(store):
    """A replayed batch, a redelivery, and the same sample twice in one batch: INSERT OR IGNORE
    stores each once, and the rollup counts only what the insert added."""
    batch = WriteBatch(readings=[reading(T0 + 1, hr=70.0), reading(T0 + 2, hr=90.0)])
    store.write(batch)
    store.write(batch)  # replayed after a crash
    store.write(WriteBatch(readings=[reading(T0 + 3, hr=100.0), reading(T0 + 3, hr=100.0), reading(T0 + 2, hr=90.0)]))
    row = rollup(store)[T0]
    assert (row["hr_n"], row["hr_sum"], row["hr_max"], row["readings_n"]) == (3, 260.0, 100.0, 3)
    assert_rollup_equals_raw(store)


def test_the_same_time_from_another_device_is_another_reading(store):
    store.write(WriteBatch(readings=[reading(T0 + 1, hr=70.0), reading(T0 + 1, device="dev-2", hr=72.0)]))
    assert rollup(store)[T0]["hr_n"] == 2
    assert_rollup_equals_raw(store)


def test_late_and_shuffled_readings_end_equal_to_a_raw_scan(store):
    """Five minutes of 1 Hz readings from two devices, written in shuffled batches with every
    fifth batch written again: the rollups equal the raw rows, minute by minute."""
    rng = random.Random(7)
    rows = [reading(T0 + s + 0.5, device=f"dev-{s % 2}", hr=60 + rng.random() * 40, spo2=rng.choice([None, 95.0, 88.0]),
                    news2=rng.randint(0, 7), news2_partial=rng.random() < 0.3) for s in range(300)]
    rng.shuffle(rows)
    batches = [rows[i:i + 17] for i in range(0, len(rows), 17)]
    for i, batch in enumerate(batches):
        store.write(WriteBatch(readings=batch))
        if i % 5 == 0:
            store.write(WriteBatch(readings=batch))
    assert sum(r["hr_n"] for r in rollup(store).values()) == 300
    assert_rollup_equals_raw(store)


def test_latest_keeps_the_newest_value_of_each_vital_even_when_a_late_one_lands(store):
    store.write(WriteBatch(readings=[reading(T0 + 100, hr=80.0, sbp=None, news2=2, news2_partial=True),
                                     reading(T0 + 10, hr=60.0, sbp=120.0)]))
    store.write(WriteBatch(readings=[reading(T0 + 50, hr=65.0, sbp=130.0, news2=5, news2_partial=False)]))  # late
    assert latest(store) == {"hr": (T0 + 100, 80.0, None), "sbp": (T0 + 50, 130.0, None), "news2": (T0 + 100, 2.0, True)}


def test_risk_comes_from_scores_and_a_replayed_score_counts_once(store):
    scores = [ScoreRow("pt-1", T0 + 5, 0.1, 0.2, "m1"), ScoreRow("pt-1", T0 + 30, 0.1, 0.6, "m1")]
    store.write(WriteBatch(scores=scores))
    store.write(WriteBatch(scores=scores))
    row = rollup(store)[T0]
    assert (row["risk_min"], row["risk_max"], row["risk_n"]) == (0.2, 0.6, 2)
    assert row["risk_sum"] == pytest.approx(0.8)
    assert row["readings_n"] == 0
    assert latest(store)["risk"] == (T0 + 30, 0.6, None)


def test_many_readings_in_one_batch_are_all_rolled_up(store):
    """More rows than one multi-row INSERT holds (chunks of 256 and powers of two)."""
    rows = [reading(T0 + i * 0.25, hr=float(i % 50 + 50)) for i in range(1000)]
    store.write(WriteBatch(readings=rows))
    assert sum(r["hr_n"] for r in rollup(store).values()) == 1000
    assert store.count(tables.readings) == 1000
    assert_rollup_equals_raw(store)


def test_a_failed_batch_leaves_neither_readings_nor_rollups(store):
    """One transaction: a batch that fails after its readings went in leaves no rollup behind."""
    bad = WriteBatch(readings=[reading(T0 + 1, hr=70.0)],
                     scores=[ScoreRow("pt-1", T0 + 1, 0.1, 0.2, None)])  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(Exception):
        store.write(bad)
    assert store.count(tables.readings) == 0 and rollup(store) == {} and latest(store) == {}
    store.write(WriteBatch(readings=[reading(T0 + 1, hr=70.0)]))  # and written again, it counts once
    assert rollup(store)[T0]["hr_n"] == 1
