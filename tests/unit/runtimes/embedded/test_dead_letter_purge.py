"""The embedded runtime purges dead letters past VIGIL_DEADLETTER_RETENTION_DAYS, on its writer
thread, and counts and logs what it purged."""

from __future__ import annotations

from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.sql import WriteBatch

T = 1_760_000_000.0


async def test_the_purge_deletes_what_is_past_retention_and_counts_it(tmp_path, caplog):
    caplog.set_level("INFO", logger="vigil.runtime")
    settings = VigilSettings(data_dir=tmp_path, models_enabled=False, deadletter_retention_days=7)
    runtime = EmbeddedRuntime(settings, Registry(), clock=lambda: T)
    try:
        batch = WriteBatch()
        keeper = DeadLetterKeeper()
        for i, age_days in enumerate((30, 8, 6, 0)):
            keeper.add(batch, received_at=T - age_days * 86400, topic="t", device_id=f"d-{i}", patient_id=None,
                       reason="malformed_json", detail="x", sample_index=None, raw=b"[", enrolled=True)
        runtime.writer.write_and_wait(batch)
        assert await runtime.purge_dead_letters() == 2
        assert sorted(r["device_id"] for r in runtime.store.dead_letters()) == ["d-2", "d-3"]
        assert runtime.metrics.registry.get_sample_value("vigil_dead_letters_purged_total") == 2
        (line,) = [r for r in caplog.records if r.getMessage() == "dead letters purged"]
        assert (line.rows, line.counts, line.retention_days) == (2, 2, 7)
        assert await runtime.purge_dead_letters() == 0
    finally:
        runtime.writer.close()
        runtime.store.close()
