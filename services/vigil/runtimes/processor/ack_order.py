"""A tripwire on the order in which a worker acknowledges Kafka records, per partition.

Faust commits, per partition, the first run of consecutive acknowledged offsets; when the record
at the committed offset is not yet acknowledged but the next one is, faust-streaming's
`Consumer._new_offset` still commits past it (its head check is `min(acked) - committed > 1`,
one short; `worker_consumer.never_past_unacked` now refuses such a commit). Vigil acknowledges in
decision order (InOrderStore), but a record can still reach the agent twice around a partition
assignment (a CI run: sixteen acknowledgements out of order in a worker's first batches, then a
record never stored; issue 12, now prevented by the worker consumer's InSequence). This watch counts
each and logs the first of each run, with the partition and offsets, so that such a loss can be
traced. It changes nothing it watches.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vigil.processor")


class AckOrder:
    """The highest offset acknowledged per topic partition, and how many came out of order.

    A partition fetched again from an earlier offset (the worker consumer does so after a seek,
    worker_consumer.py) acknowledges a run of older offsets: the first is logged, the rest of
    the run, up to the highest offset seen, only counted."""

    def __init__(self) -> None:
        self.highest: dict[Any, int] = {}
        self.out_of_order = 0
        self._replaying: set[Any] = set()  # partitions whose out-of-order run was logged already

    def acknowledging(self, message: Any) -> None:
        tp, offset = getattr(message, "tp", None), getattr(message, "offset", None)
        if tp is None or offset is None:
            return
        highest = self.highest.get(tp)
        if highest is not None and offset <= highest:
            self.out_of_order += 1
            if tp in self._replaying:
                return
            self._replaying.add(tp)
            # The numbers in the text too: Faust's worker log format drops `extra`. The same offset
            # again is a record Faust delivered twice (seen after a restart): harmless, the core
            # refuses its samples as duplicates; an older offset after a newer one is the danger.
            again = offset == highest
            log.log(logging.WARNING if again else logging.ERROR,
                    f"record acknowledged {'again' if again else 'out of order'}: {tp} offset {offset} after {highest}"
                    f" (the run up to {highest} is counted, not logged)",
                    extra={"partition": str(tp), "offset": offset, "after_offset": highest})
            return
        self.highest[tp] = offset
        self._replaying.discard(tp)

    def forget(self) -> None:
        """A rebalance: partitions may come back from another worker, at any offset."""
        self.highest.clear()
        self._replaying.clear()
