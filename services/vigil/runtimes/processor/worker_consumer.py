"""The worker's Kafka consumer: Faust's, with two fixes for records lost around rebalances.

Commits: Faust commits a partition's first run of consecutive acknowledged offsets. Its guard
against a hole at the head (`Consumer._new_offset`: `min(acked) - committed > 1`) is one short:
the committed offset is the *next* record to process, so with that record unacknowledged and the
one after it acknowledged, Faust commits past it, and after a crash or rebalance that record is
never read again (at-most-once for it). `never_past_unacked` refuses that commit: the offset moves
only over a run that starts at the committed offset (or at an offset Faust knows it will never
deliver, a gap).

Delivery: after a rebalance Faust seeks each partition to its committed offset, but records
fetched before that seek can still be delivered after it, and its read-offset check then drops
the re-read records below them and marks them as a gap; and right after the seek it resumes the
flow, which empties the agents' queues (FlowControlEvent.resume clears them), so records delivered
in between are never taken while Faust goes on after them (issue 12: a reading lost in about one
kill run in six, by the worker that was not killed). `getmany` applies InSequence
(in_sequence.py) instead: after a seek to C the agent gets C, C + 1, ..., a record seen before is
skipped, a record ahead of the next one sends the partition back to fetch from the next one,
and when the queues were emptied (CountedFlowControl) each partition goes back to its committed
offset.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.queues import FlowControlEvent

from vigil.runtimes.processor.in_sequence import InSequence, Verdict
from vigil.runtimes.processor.rebalance_watch import log, ranges, tp_name


class CountedFlowControl(FlowControlEvent):
    """Faust's flow control of the agents' queues, counting how often it empties them (the
    worker's app uses it: ProcessorApp.flow_control)."""

    clears = 0

    def clear(self) -> None:
        super().clear()
        self.clears += 1


class WorkerConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer: commits never past an unacknowledged record, each partition's
    records delivered in sequence, and the watch (rebalance_watch.py)."""

    def _new_offset(self, tp: Any) -> int | None:
        if not never_past_unacked(self._acked[tp], self._committed_offset[tp], self._gap[tp]):
            return None
        return super()._new_offset(tp)

    @property
    def _vigil(self) -> ConsumerState:
        try:
            return self.__dict__["_vigil_state"]
        except KeyError:
            return self.__dict__.setdefault("_vigil_state", ConsumerState())

    async def seek_to_committed(self) -> Mapping[Any, int]:
        offsets = await super().seek_to_committed()
        self._vigil.sequence.sought({tp: offset for tp, offset in offsets.items() if not self._is_changelog_tp(tp)})
        self._vigil.seeks += 1
        return offsets

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """Faust's getmany, each partition's records in sequence (in_sequence.InSequence)."""
        state = self._vigil
        sequence = state.sequence
        state.fetched = {}
        seeks = state.seeks
        yielded: dict[Any, set[int]] = defaultdict(set)
        already: dict[Any, list[int]] = defaultdict(list)
        sent_back: dict[Any, int] = {}
        dropped: dict[Any, list[int]] = defaultdict(list)
        try:
            self._rewind_after_clear()
            for tp in list(state.rewind):
                state.rewind.discard(tp)
                if tp in sequence.next:
                    await self._seek_back(tp, sequence.next[tp])
            async for tp, message in super().getmany(timeout):
                offset = message.offset
                # The agent's queues emptied meanwhile: the partitions it sends back go back now
                # when this batch has a record of theirs, the others at the next call.
                self._rewind_after_clear()
                if tp in state.rewind:
                    state.rewind.discard(tp)
                    if tp in sequence.next:
                        sent_back[tp] = sequence.next[tp]
                        await self._seek_back(tp, sequence.next[tp])
                if tp in sent_back:
                    continue  # the rest of a batch fetched past records the agent never saw
                verdict = sequence.admit(tp, offset)
                if verdict is Verdict.ALREADY:
                    already[tp].append(offset)
                    continue
                if verdict is Verdict.AHEAD:
                    sent_back[tp] = expected = sequence.next[tp]
                    log.warning(f"record ahead of the next one: {tp_name(tp)} offset {offset}, expected {expected} "
                                f"(generation {self.app.consumer_generation_id}): fetching again from {expected}")
                    await self._seek_back(tp, expected)
                    continue
                if verdict is Verdict.AFTER_HOLE:
                    expected = sequence.next[tp]
                    log.warning(f"no records in the log between {expected} and {offset} of {tp_name(tp)}: a gap")
                    self._gap[tp].addi(expected, offset)
                checked = tp in sequence.next
                if checked:
                    # The decision is made: Faust's read-offset check must neither drop this
                    # record nor mark a gap below it.
                    self._read_offset[tp] = offset
                below = self._read_offset.get(tp)
                skipped = below is not None and offset < below  # by Faust's drain loop (not checked here)
                if skipped:
                    dropped[tp].append(offset)
                seeks_before = state.seeks
                yielded[tp].add(offset)
                yield tp, message
                # Not counted when a seek reset the sequence meanwhile, or when the flow
                # stopped (a rebalance: Faust may have cancelled the delivery).
                if not skipped and state.seeks == seeks_before and self.flow_active and not self._is_changelog_tp(tp):
                    sequence.delivered(tp, offset)
        finally:
            self._after_batch(seeks, yielded, already, dropped, sent_back)

    def _after_batch(self, seeks: int, yielded: dict[Any, set[int]], already: dict[Any, list[int]],
                     dropped: dict[Any, list[int]], sent_back: dict[Any, int]) -> None:
        """The watch's report on one fetched batch; fetched records Faust passed over without a
        seek following are fetched again."""
        state = self._vigil
        sequence = state.sequence
        generation = self.app.consumer_generation_id
        for tp, offsets in already.items():
            log.info(f"records delivered before, skipped: {tp_name(tp)} offsets {ranges(offsets)} "
                     f"(generation {generation})")
        for tp, offsets in dropped.items():
            log.warning(f"records dropped below Faust's read offset {self._read_offset.get(tp)}: {tp_name(tp)} "
                        f"offsets {ranges(offsets)} (generation {generation})")
        for tp, records in state.fetched.items():
            missed = [record.offset for record in records
                      if record.offset not in yielded[tp] and record.offset not in already.get(tp, ())]
            if not missed or tp in sent_back:
                continue
            # Faust passed them over (the flow stopped, the partition paused): when no seek
            # followed, the fetch position is past them, so a checked partition goes back.
            again = state.seeks == seeks and tp in sequence.next
            if again:
                state.rewind.add(tp)
            log.log(logging.WARNING if again else logging.INFO,
                    f"fetched records not delivered: {tp_name(tp)} offsets {ranges(missed)} "
                    f"(flow active {self.flow_active}, generation {generation}, "
                    f"active {tp in (self._active_partitions or ())}, assigned {tp in state.assigned}, "
                    f"{'then seek to committed' if state.seeks != seeks else 'no seek'}"
                    f"{', fetching again' if again else ''})")
        state.fetched = {}

    def _rewind_after_clear(self) -> list[Any]:
        """When Faust emptied the agents' queues since the last call, each partition's next record
        is its committed offset again: the partitions to fetch again, marked in state.rewind."""
        state = self._vigil
        clears = getattr(self.app.flow_control, "clears", 0)
        if clears == state.clears_seen:
            return []
        state.clears_seen = clears
        before = dict(state.sequence.next)
        back = state.sequence.rewound({tp: self._committed_offset.get(tp) for tp in state.sequence.next})
        if back:
            # Without this, Faust goes on after them: lost (issue 12).
            log.warning("Faust emptied the agent's queue holding records delivered since the seek: fetching again %s",
                        ", ".join(f"{tp_name(tp)} {state.sequence.next[tp]}-{before[tp] - 1}" for tp in sorted(back)))
        state.rewind.update(back)
        return back

    async def _seek_back(self, tp: Any, offset: int) -> None:
        try:
            await self.seek_wait({tp: offset})
        except Exception as exc:  # revoked meanwhile: the rebalance's seek decides
            log.warning(f"seeking {tp_name(tp)} back to {offset} failed: {exc!r}")

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        records = await super()._getmany(active_partitions, timeout)
        self._vigil.fetched = records or {}
        return records

    async def perform_seek(self) -> None:
        before = dict(self._read_offset)
        await super().perform_seek()
        log.info("seek to committed (generation %s): %s", self.app.consumer_generation_id, "; ".join(
            f"{tp_name(tp)} read {before.get(tp)} -> {offset} committed {self._committed_offset.get(tp)}"
            for tp, offset in sorted(self._read_offset.items()) if not self._is_changelog_tp(tp)))

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        log.warning(f"Faust marks a gap (offsets it will never deliver, committed over): {tp_name(tp)} "
                    f"{offset_from}-{offset_to} (committed {self._committed_offset.get(tp)}, "
                    f"generation {self.app.consumer_generation_id})")
        await super()._add_gap(tp, offset_from, offset_to)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        log.info("partitions revoked (generation %s): %s", self.app.consumer_generation_id, "; ".join(
            f"{tp_name(tp)} read {self._read_offset.get(tp)} committed {self._committed_offset.get(tp)} "
            f"acked-uncommitted {ranges(list(self._acked.get(tp, ())))}"
            for tp in sorted(revoked) if not self._is_changelog_tp(tp)))
        self._vigil.assigned = self._vigil.assigned - revoked
        self._vigil.sequence.forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        log.info("partitions assigned (generation %s): %s", generation_id,
                 ", ".join(tp_name(tp) for tp in sorted(assigned)))
        self._vigil.assigned = frozenset(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    async def _commit_offsets(self, offsets: Mapping[Any, int], start_new_transaction: bool = True) -> bool:
        before = {tp: self._committed_offset.get(tp) for tp in offsets}
        did = await super()._commit_offsets(offsets, start_new_transaction=start_new_transaction)
        log.info("commit %s: %s", "done" if did else "not done", ", ".join(
            f"{tp_name(tp)} {before[tp]} -> {offset}" for tp, offset in sorted(offsets.items())))
        return did

    def ack(self, message: Any) -> bool:
        tp = message.tp
        committed = self._committed_offset.get(tp)
        done = super().ack(message)
        if tp not in self._vigil.assigned:
            log.info(f"acknowledged a record of a partition not assigned: {tp_name(tp)} offset {message.offset} "
                        f"(committed {committed}, counted {done})")
        return done


class ConsumerState:
    """What the worker's consumer keeps beside Faust's bookkeeping."""

    def __init__(self) -> None:
        self.sequence = InSequence()
        self.seeks = 0  # seeks to the committed offsets so far
        self.fetched: Mapping[Any, list[Any]] = {}  # the batch getmany is delivering (for the watch)
        self.assigned: frozenset[Any] = frozenset()
        self.clears_seen = 0  # CountedFlowControl.clears when last looked at
        self.rewind: set[Any] = set()  # partitions to fetch again from their next offset


def never_past_unacked(acked: list[int], committed: int | None, gaps: Any) -> bool:
    """May Faust work out a new commit from `acked`? Not while the record at the committed offset
    (the next to process) is neither acknowledged nor a known gap."""
    if not acked or committed is None:
        return True
    return min(acked) <= committed or bool(gaps.at(committed))
