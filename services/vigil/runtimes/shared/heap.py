"""Keep the garbage collector's full collections off what the process built at start-up.

Why: CPython runs a full (oldest-generation) collection once enough objects have survived the
younger ones, and a full collection walks every tracked object in the process: the modules,
settings, roster and app built at start-up, about 230,000 objects, which live as long as the
process does. A ward overview of 1,000 patients builds some 26,000 buckets that survive while the
reply is built, so nearly every overview paid for one full collection: 80-100 ms of about 250 ms
of its server time (docs/benchmarks.md, issue 16). `gc.freeze()` moves the objects alive now into a
generation the collector no longer walks; objects made later are collected as before. Nothing
frozen is freed by the cycle collector (reference counting still frees it), so it runs once a
process, when the first server starts serving, after a collection of start-up's garbage: a test
process that starts many runtimes freezes only the first one's heap.
"""

from __future__ import annotations

import gc


_frozen = False


def freeze_startup_heap() -> int:
    """Collect start-up's garbage, then leave what survives out of later full collections (once a
    process); how many objects are left out."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    return gc.get_freeze_count()
