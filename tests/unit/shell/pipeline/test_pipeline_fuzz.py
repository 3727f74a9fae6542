"""The whole pipeline under fuzzing, into SQLite: every good sample stored, every bad one counted.

Good messages from eight devices interleaved with mutants (and hostile status messages) of a
ninth device's batches; `run_pipeline` (vigil.tools.bench.fuzz) holds every message to account.
"""

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.shell.observability.metrics import Metrics
from vigil.shell.pipeline.pipeline import Pipeline
from vigil.shell.stores.dead_letters import DeadLetterKeeper
from vigil.shell.stores.sql import SqlStore
from vigil.tools.bench.fuzz import fuzz_registry, mixed_messages, run_pipeline

MESSAGES_PER_RUN = 6_000


def fresh(tmp_path, name: str) -> tuple[Pipeline, SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / name}")
    # Every dead letter kept as a row, so each one can be traced to its message; the per-device
    # rate limit on stored rows has its own attack tests (tests/unit/shell/stores/test_dead_letters.py).
    return Pipeline(fuzz_registry(), Metrics(), store, dead_letters=DeadLetterKeeper(limited=False)), store


@pytest.mark.parametrize("seed", [1, 2])
def test_mixed_batches_lose_nothing_and_count_everything(tmp_path, seed):
    now = time.time()
    messages, good = mixed_messages(random.Random(seed), MESSAGES_PER_RUN, now)
    pipeline, store = fresh(tmp_path, f"fuzz-{seed}.sqlite")
    counts = run_pipeline(pipeline, store, messages, good, now)
    assert counts["good_samples"] > 1000 and counts["readings_stored"] >= counts["good_samples"]
    assert counts["dead_letters"] > 1000
    assert pipeline.totals.payloads == sum(1 for m in messages if m.topic.endswith("/vitals"))


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 120), batch=st.integers(1, 50))
def test_any_interleaving_and_batch_size(tmp_path_factory, seed, count, batch):
    """Hypothesis picks the mix and the batch boundaries; the accounts must hold for every one."""
    now = time.time()
    messages, good = mixed_messages(random.Random(seed), count, now)
    pipeline, store = fresh(tmp_path_factory.mktemp("fuzz"), "fuzz.sqlite")
    run_pipeline(pipeline, store, messages, good, now, batch=batch)
