"""Each partition's records reach the agent in offset order, none skipped: the next one expected.

Faust's consumer delivers a record when its offset is at or above the partition's *read offset*
(the last one delivered), and when it jumps ahead it records the offsets in between as a "gap"
it will never deliver, which its commit then counts as done. That is right for a fetch position
that only moves forward. Around a rebalance it does not: `perform_seek` sets the fetch position
back to the committed offset, but records fetched before the seek (an in-flight fetch, the rest
of a batch) are still delivered after it. A batch starting above the committed offset raises the
read offset, so the records re-read from the committed offset are dropped as already read, and a
gap is marked over them (issue 12; the scaled kill test's logs showed the drops, and a gap that
held a partition's commit back to one offset a second).

InSequence is the rule the worker's consumer applies instead (worker_consumer.py), per
partition with a known position: after a seek to offset C the next record delivered must be C,
then C + 1, and so on. A record below that was delivered already (skip it); a record above it
means the fetch position ran past records the agent never saw, so the consumer seeks back to
the expected offset.
Only when a fetch from there starts at the same higher offset again is the difference a real
hole in the log (compaction, transaction markers): then, and only then, it is a gap.

Delivered is not yet taken: a record waits in the agent's queue, and Faust empties those queues
when it resumes the flow at the end of a rebalance, right after the seek. So when the queues are
emptied every partition goes back to its committed offset (`rewound`): what the agent had taken
by then comes again, and its stores are idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Hashable


class Verdict(Enum):
    DELIVER = "deliver"  # the next record: deliver it
    ALREADY = "already"  # below the next one: delivered before, skip it
    AHEAD = "ahead"  # records before it were skipped: seek back to the next one, skip it
    AFTER_HOLE = "after_hole"  # the log itself has no records between the next one and this: deliver


@dataclass
class InSequence:
    """The next offset each partition must deliver; partitions without one are not checked."""

    next: dict[Hashable, int] = field(default_factory=dict)
    _ahead_seen: dict[Hashable, tuple[int, int]] = field(default_factory=dict)
    _sought: dict[Hashable, int] = field(default_factory=dict)  # where the last seek put each one

    def sought(self, positions: dict[Any, int | None]) -> None:
        """The fetch positions were set back (to the committed offsets): each partition's next
        record is there. None (nothing committed yet) is the log's start."""
        for tp, offset in positions.items():
            self.next[tp] = self._sought[tp] = offset if offset is not None and offset > 0 else 0
            self._ahead_seen.pop(tp, None)

    def forget(self, tps: Any) -> None:
        """Partitions revoked: another worker, or a later seek, decides where they resume."""
        for tp in tps:
            self.next.pop(tp, None)
            self._ahead_seen.pop(tp, None)
            self._sought.pop(tp, None)

    def admit(self, tp: Hashable, offset: int) -> Verdict:
        expected = self.next.get(tp)
        if expected is None or offset == expected:
            return Verdict.DELIVER
        if offset < expected:
            return Verdict.ALREADY
        if self._ahead_seen.get(tp) == (expected, offset):
            return Verdict.AFTER_HOLE  # a fetch from `expected` began here twice: nothing in between
        self._ahead_seen[tp] = (expected, offset)
        return Verdict.AHEAD

    def rewound(self, committed: dict[Any, int | None]) -> list[Hashable]:
        """The agent's queues were emptied: each partition's next record is its committed offset
        again (when that is below; without one, where the last seek put it). The partitions whose
        fetch position must go back."""
        back = []
        for tp, expected in self.next.items():
            offset = committed.get(tp)
            if offset is None:
                offset = self._sought.get(tp)
            if offset is not None and offset < expected:
                self.next[tp] = offset
                self._ahead_seen.pop(tp, None)
                back.append(tp)
        return back

    def delivered(self, tp: Hashable, offset: int) -> None:
        if tp in self.next:
            self.next[tp] = offset + 1
            self._ahead_seen.pop(tp, None)
