"""The scaled path keeps refused input bounded too: capped records on vigil.deadletter, and a
topic whose retention is VIGIL_DEADLETTER_RETENTION_DAYS."""

from __future__ import annotations

import hashlib

from vigil.settings import VigilSettings
from vigil.shell.contract.validation import RejectReason, Rejection
from vigil.shell.stores.rows import DeadLetterRow
from vigil.shell.streams.records import DeadLetterRecord
from vigil.shell.streams.topics import deadletter_topic_configs

T = 1_760_000_000.0


def test_attack_an_8_mb_payload_becomes_a_capped_record_with_its_length_and_hash():
    payload = b"[" * (8 * 1024 * 1024)
    rejection = Rejection(RejectReason.OVERSIZE, "8 MB", payload, "vigil/v1/devices/d-1/vitals", "d-1", T)
    record = DeadLetterRecord.of(rejection)
    assert len(record.raw) == 64 * 1024 and record.raw_bytes == len(payload)
    assert record.raw_sha256 == hashlib.sha256(payload).hexdigest()
    assert len(record.model_dump_json()) < 100 * 1024
    again = DeadLetterRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert len(DeadLetterRecord.of(rejection, max_raw_bytes=10).raw) == 10


def test_a_record_from_a_stored_row_keeps_the_rows_length_and_hash():
    row = DeadLetterRow(T, "t", "d", None, "duplicate_seq", "again", None, b"abc", 3000, "f" * 64)
    record = DeadLetterRecord.of_row(row)
    assert (record.raw, record.raw_bytes, record.raw_sha256) == (b"abc", 3000, "f" * 64)
    old_writer = '{"v":1,"reason":"oversize","detail":"d","topic":"t","device_id":null,"patient_id":null,' \
                 '"received_at":1.0,"sample_index":null,"raw_b64":"AA=="}'
    assert DeadLetterRecord.model_validate_json(old_writer).raw_bytes is None  # records before issue 12 still read


def test_the_dead_letter_topic_is_created_with_the_retention_setting():
    assert deadletter_topic_configs(VigilSettings(deadletter_retention_days=14)) == {"retention.ms": str(14 * 86_400_000)}
    assert deadletter_topic_configs(VigilSettings(deadletter_retention_days=0.5)) == {"retention.ms": "43200000"}
