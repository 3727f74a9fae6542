"""The one percentile every Vigil figure uses: /healthz timings, the demo summary, the benches.

The rule is nearest rank on the sorted values, never an interpolation: the q-quantile of n
values is the value at index round(q * (n - 1)), with Python's round (an exact tie goes to the
even index). That is numpy's `percentile(..., method="nearest")`. A reported p99 is therefore
always a latency that was actually measured, and it is the rule the ingest and scaled benches
(whose figures docs/benchmarks.md compares run to run) have always used.
"""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile of `values` (q from 0 to 1: 0.5 is the median, 0.99 the p99) by nearest
    rank: the value at index round(q * (n - 1)) of the sorted values; None when there are none."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q is a fraction from 0 to 1 (0.99 for p99), not {q!r}")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
