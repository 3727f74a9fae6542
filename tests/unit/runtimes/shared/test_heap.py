"""The start-up heap is frozen once a process: later objects are still collected."""

import gc
import weakref

from vigil.runtimes.shared import heap


def test_the_start_up_heap_is_frozen_once_and_later_cycles_are_still_collected(monkeypatch):
    monkeypatch.setattr(heap, "_frozen", False)
    before = gc.get_freeze_count()
    frozen = heap.freeze_startup_heap()
    try:
        assert frozen >= before and frozen > 0
        assert heap.freeze_startup_heap() == frozen  # a second server in the process freezes nothing more

        class Cycle:
            pass

        made = Cycle()
        made.me = made  # garbage only the cycle collector can free
        seen = weakref.ref(made)
        del made
        gc.collect()
        assert seen() is None
    finally:
        if before == 0:
            gc.unfreeze()
