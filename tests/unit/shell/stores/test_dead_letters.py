"""Bounded storage for refused input (issue 12, point 3), each guard with the attack it stops:
an 8 MB payload, a flooding device, a rotating device id, old rows past retention, and a store
made by an earlier version."""

from __future__ import annotations

import hashlib
import json
import os

from sqlalchemy import create_engine, inspect, select, text

from vigil.settings import VigilSettings
from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import Message, Pipeline
from vigil.shell.registry import Registry, Roster
from vigil.shell.stores.dead_letters import DeadLetterKeeper, TokenBucket, cap_raw
from vigil.shell.stores.rows import DeadLetterCountRow, merge_counts
from vigil.shell.stores.sql import SqlStore, WriteBatch
from vigil.shell.stores.tables import dead_letter_counts, dead_letters

T = 1_760_000_000.0
MB = 1024 * 1024


def store_at(tmp_path) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path / 'vigil.sqlite'}")


def file_bytes(tmp_path) -> int:
    return sum(os.path.getsize(p) for p in tmp_path.glob("vigil.sqlite*"))


def rejected(metrics: Metrics, reason: str) -> float:
    return metrics.registry.get_sample_value("vigil_rejected_total", {"reason": reason}) or 0.0


def test_the_raw_bytes_are_capped_with_the_whole_payloads_length_and_hash():
    payload = os.urandom(100_000)
    capped = cap_raw(payload, 64 * 1024)
    assert capped.raw == payload[:65536] and capped.raw_bytes == 100_000
    assert capped.raw_sha256 == hashlib.sha256(payload).hexdigest()
    assert cap_raw(b"{}", 64 * 1024) == (b"{}", 2, hashlib.sha256(b"{}").hexdigest())


def test_attack_ten_8_mb_payloads_cost_kilobytes_not_megabytes(tmp_path):
    store = store_at(tmp_path)
    metrics = Metrics()
    pipeline = Pipeline(Registry(), metrics, store)
    before = file_bytes(tmp_path)
    payload = b'{"v":1,"device_id":"d-1","samples":[' + b"9" * (8 * MB) + b"]}"
    for i in range(10):
        store.write(pipeline.process([Message("vigil/v1/devices/d-1/vitals", payload, T + i)]).batch)
    rows = store.dead_letters(limit=20)
    assert len(rows) == 10 and {r["reason"] for r in rows} == {"oversize"}
    assert all(len(r["raw"]) == 64 * 1024 and r["raw_bytes"] == len(payload) for r in rows)
    assert {r["raw_sha256"] for r in rows} == {hashlib.sha256(payload).hexdigest()}
    assert rejected(metrics, "oversize") == 10
    grown = file_bytes(tmp_path) - before
    assert grown < 2 * MB, grown  # was 23 MB for ten of them: 80 MB stored whole
    store.close()


def bad_payloads(device_id: str, n: int, start_t: float, every_s: float) -> list[Message]:
    return [Message(f"vigil/v1/devices/{device_id}/vitals", b"{not json " + str(i).encode(), start_t + i * every_s)
            for i in range(n)]


def enrolled(*device_ids: str) -> Registry:
    return Registry(Roster.model_validate({"patients": [
        {"patient_id": f"p-{d}", "devices": [{"device_id": d}]} for d in device_ids]}))


def test_attack_a_flooding_device_fills_its_burst_then_its_rate_and_every_rejection_counts(tmp_path):
    store = store_at(tmp_path)
    metrics = Metrics()
    keeper = DeadLetterKeeper(rate_per_s=2.0, burst=50)
    pipeline = Pipeline(enrolled("d-flood", "d-calm"), metrics, store, dead_letters=keeper)
    flood = bad_payloads("d-flood", 10_000, T, 0.01)  # 100 a second for 100 s
    for start in range(0, len(flood), 500):
        store.write(pipeline.process(flood[start:start + 500]).batch)
    store.write(pipeline.process(bad_payloads("d-calm", 3, T + 50, 1.0)).batch)  # a neighbour is not starved
    kept = store.dead_letter_reasons()["malformed_json"]
    assert 50 + 2 * 99 <= kept - 3 <= 50 + 2 * 100 + 1  # burst, then the rate over the 100 s
    assert store.dead_letter_counts() == {("d-flood", "malformed_json"): 10_000, ("d-calm", "malformed_json"): 3}
    assert rejected(metrics, "malformed_json") == 10_003
    not_kept = metrics.registry.get_sample_value("vigil_dead_letters_not_kept_total", {"reason": "malformed_json"})
    assert not_kept == 10_003 - kept
    with store.engine.connect() as conn:
        row = conn.execute(select(dead_letter_counts).where(dead_letter_counts.c.device_id == "d-flood")).one()
    assert (row.kept, row.first_t, row.last_t) == (kept - 3, T, T + 9999 * 0.01)
    store.close()


def test_attack_rotating_unenrolled_device_ids_buys_no_rows_no_buckets_and_no_count_rows(tmp_path):
    store = store_at(tmp_path)
    metrics = Metrics()
    pipeline = Pipeline(enrolled("d-1"), metrics, store)  # the default budgets
    messages = [Message(f"vigil/v1/devices/{i}{'x' * 100}/vitals", b"[", T + i * 0.001) for i in range(5000)]
    messages.append(Message("vigil/v1/devices/d-1/vitals", b"[", T + 5))
    store.write(pipeline.process(messages).batch)
    assert store.count(dead_letters) <= 20 + 1 + 1  # the unenrolled share one burst; d-1 has its own
    assert store.dead_letter_counts() == {("", "malformed_json"): 5000, ("d-1", "malformed_json"): 1}
    assert rejected(metrics, "malformed_json") == 5001
    assert all(len(r["device_id"]) <= 64 for r in store.dead_letters())  # PostgreSQL's column width holds
    assert len(pipeline.dead_letters._devices) == 2  # buckets: bounded by the roster


def test_attack_many_enrolled_devices_sending_8_mb_payloads_stay_within_the_shared_byte_budget(tmp_path):
    store = store_at(tmp_path)
    devices = [f"d-{i}" for i in range(50)]
    pipeline = Pipeline(enrolled(*devices), Metrics(), store,
                        dead_letters=DeadLetterKeeper(total_bytes_per_s=0.0, total_burst_bytes=MB))
    payload = b"[" * (8 * MB)
    for i, device in enumerate(devices):
        store.write(pipeline.process([Message(f"vigil/v1/devices/{device}/vitals", payload, T + i)]).batch)
    assert 14 <= store.count(dead_letters) <= MB // (64 * 1024 + 256) == 15
    assert sum(store.dead_letter_counts().values()) == 50


def test_counts_add_up_across_batches_and_keep_first_and_last_time():
    rows = [DeadLetterCountRow("d", "r", 1, 1, T + 5, T + 5), DeadLetterCountRow("d", "r", 1, 0, T + 1, T + 1),
            DeadLetterCountRow("", "r", 1, 1, T, T)]
    assert sorted(merge_counts(rows)) == [("", "r", 1, 1, T, T), ("d", "r", 2, 1, T + 1, T + 5)]


def test_a_bucket_refills_at_its_rate_and_never_from_a_clock_going_back():
    bucket = TokenBucket(1.0, 2, T)
    assert bucket.take(T) and bucket.take(T) and not bucket.take(T)
    assert not bucket.take(T - 100)  # time going backwards gives nothing
    assert bucket.take(T + 1) and not bucket.take(T + 1)


def test_the_purge_deletes_rows_and_counts_past_retention(tmp_path):
    store = store_at(tmp_path)
    keeper = DeadLetterKeeper()
    batch = WriteBatch()
    for device, t in (("old", T - 30 * 86400), ("new", T)):
        keeper.add(batch, received_at=t, topic=f"vigil/v1/devices/{device}/vitals", device_id=device, patient_id=None,
                   reason="malformed_json", detail="x", sample_index=None, raw=b"[", enrolled=True)
    store.write(batch)
    assert store.purge_dead_letters(T - 14 * 86400) == (1, 1)
    assert [r["device_id"] for r in store.dead_letters()] == ["new"]
    assert store.dead_letter_counts() == {("new", "malformed_json"): 1}
    assert store.purge_dead_letters(T - 14 * 86400) == (0, 0)
    store.close()


def test_a_dead_letter_table_of_an_earlier_version_gains_the_new_columns_and_the_purge_index(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at FLOAT NOT NULL,
                             topic VARCHAR(256) NOT NULL, device_id VARCHAR(64), patient_id VARCHAR(64),
                             reason VARCHAR(32) NOT NULL, detail TEXT NOT NULL, sample_index INTEGER, raw BLOB NOT NULL)"""))
        conn.execute(text("""INSERT INTO dead_letters (received_at, topic, reason, detail, raw)
                             VALUES (1.0, 't', 'oversize', 'big', x'00')"""))
    engine.dispose()
    store = SqlStore(url)
    columns = {c["name"] for c in inspect(store.engine).get_columns("dead_letters")}
    assert {"raw_bytes", "raw_sha256"} <= columns
    assert "ix_dead_letters_received_at" in {i["name"] for i in inspect(store.engine).get_indexes("dead_letters")}
    batch = WriteBatch()
    DeadLetterKeeper().add(batch, received_at=T, topic="t", device_id="d", patient_id=None, reason="oversize",
                           detail="big", sample_index=None, raw=b"12345", enrolled=True)
    store.write(batch)
    rows = sorted(store.dead_letters(), key=lambda r: r["id"])
    assert [(r["raw_bytes"], r["raw"]) for r in rows] == [(None, b"\x00"), (5, b"12345")]
    assert store.purge_dead_letters(T) == (1, 0)
    store.close()


def test_a_sample_refused_by_the_core_is_counted_and_capped_like_a_payload(tmp_path):
    keeper = DeadLetterKeeper(max_raw_bytes=8)
    batch = WriteBatch()
    assert keeper.add(batch, received_at=T, topic="t", device_id="d", patient_id="p", reason="duplicate_seq",
                      detail="seq 3 again", sample_index=None, raw=json.dumps({"seq": 3, "hr": 70}).encode(),
                      enrolled=True)
    (row,) = batch.dead_letters
    assert len(row.raw) == 8 and row.raw_bytes == 20 and batch.dead_letter_counts == [
        DeadLetterCountRow("d", "duplicate_seq", 1, 1, T, T)]


def test_the_scaled_processor_keeps_every_dead_letter_capped_for_its_topic():
    keeper = DeadLetterKeeper.capped_only(VigilSettings(deadletter_max_raw_bytes=4))
    batch = WriteBatch()
    for i in range(500):
        assert keeper.add(batch, received_at=T, topic="t", device_id="d", patient_id="p", reason="duplicate_seq",
                          detail="again", sample_index=None, raw=b"0123456789", enrolled=True)
    assert len(batch.dead_letters) == 500 and {row.raw for row in batch.dead_letters} == {b"0123"}
