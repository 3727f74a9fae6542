"""InSequence: after a seek to offset C, the agent sees C, C + 1, ... and nothing is skipped.

Issue 12: in the scaled kill test a worker's records fetched before a seek to the committed
offset were delivered after it, Faust's read offset jumped past records the agent had never
seen, and those were dropped and marked as a gap (committed over) — a lost reading."""

from __future__ import annotations

from vigil.runtimes.processor.in_sequence import InSequence, Verdict

TP = ("vigil.readings", 2)


def sought_to(offset):
    sequence = InSequence()
    sequence.sought({TP: offset})
    return sequence


def test_after_a_seek_the_committed_offset_comes_first_then_each_next_one():
    sequence = sought_to(135)
    for offset in (135, 136, 137):
        assert sequence.admit(TP, offset) is Verdict.DELIVER
        sequence.delivered(TP, offset)
    assert sequence.next[TP] == 138


def test_attack_records_fetched_before_the_seek_past_undelivered_ones_are_fetched_again():
    """The CI run: committed 135, a batch fetched before the seek starts at 160."""
    sequence = sought_to(135)
    assert sequence.admit(TP, 160) is Verdict.AHEAD
    assert sequence.next[TP] == 135, "the consumer fetches again from 135"
    assert sequence.admit(TP, 135) is Verdict.DELIVER


def test_a_record_delivered_already_is_skipped():
    sequence = sought_to(10)
    for offset in (10, 11, 12):
        sequence.delivered(TP, offset)
    assert sequence.admit(TP, 11) is Verdict.ALREADY
    assert sequence.admit(TP, 13) is Verdict.DELIVER


def test_a_real_hole_in_the_log_is_accepted_once_a_fetch_from_the_expected_offset_lands_on_it_again():
    """Compaction or a transaction marker: a fetch from 20 starts at 23 every time."""
    sequence = sought_to(20)
    assert sequence.admit(TP, 23) is Verdict.AHEAD
    assert sequence.admit(TP, 23) is Verdict.AFTER_HOLE


def test_a_different_offset_ahead_is_not_taken_for_a_hole():
    sequence = sought_to(20)
    assert sequence.admit(TP, 23) is Verdict.AHEAD
    assert sequence.admit(TP, 25) is Verdict.AHEAD


def test_nothing_committed_yet_means_the_log_start_and_an_unknown_partition_is_not_checked():
    sequence = InSequence()
    sequence.sought({TP: None})
    assert sequence.admit(TP, 0) is Verdict.DELIVER
    assert sequence.admit(("other", 0), 99) is Verdict.DELIVER


def test_a_revoked_partition_is_forgotten():
    sequence = sought_to(5)
    sequence.forget([TP])
    assert sequence.admit(TP, 99) is Verdict.DELIVER



def test_when_the_agents_queues_are_emptied_each_partition_goes_back_to_its_committed_offset():
    """Faust empties the agents' queues when it resumes the flow after the seek: records
    delivered into them by then may never have been taken."""
    sequence = sought_to(117)
    for offset in range(117, 121):
        sequence.delivered(TP, offset)
    assert sequence.rewound({TP: 117}) == [TP]
    assert sequence.admit(TP, 117) is Verdict.DELIVER


def test_emptied_queues_change_nothing_where_nothing_was_delivered_past_the_committed_offset():
    sequence = sought_to(117)
    assert sequence.rewound({TP: 117}) == []
    assert sequence.next[TP] == 117


def test_without_a_committed_offset_the_partition_goes_back_to_where_the_seek_put_it():
    sequence = sought_to(None)
    for offset in range(0, 3):
        sequence.delivered(TP, offset)
    assert sequence.rewound({TP: None}) == [TP]
    assert sequence.next[TP] == 0
