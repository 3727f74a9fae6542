"""The acknowledgement-order tripwire: silent while offsets rise per partition, loud (logged,
counted) when one goes back, and reset by a rebalance."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from vigil.runtimes.processor.ack_order import AckOrder


def record(partition: int, offset: int) -> SimpleNamespace:
    return SimpleNamespace(tp=("vigil.readings", partition), offset=offset)


def test_rising_offsets_per_partition_are_in_order(caplog):
    order = AckOrder()
    for offset in (10, 11, 12):
        order.acknowledging(record(0, offset))
        order.acknowledging(record(1, offset - 5))  # another partition's offsets are its own
    assert order.out_of_order == 0 and not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_offset_acknowledged_after_a_higher_one_is_logged_and_counted(caplog):
    order = AckOrder()
    order.acknowledging(record(2, 488))
    with caplog.at_level(logging.ERROR, logger="vigil.processor"):
        order.acknowledging(record(2, 487))
    assert order.out_of_order == 1
    [logged] = [r for r in caplog.records if r.getMessage().startswith("record acknowledged out of order")]
    assert (logged.offset, logged.after_offset) == (487, 488)


def test_a_rebalance_forgets_what_was_acknowledged():
    order = AckOrder()
    order.acknowledging(record(2, 500))
    order.forget()
    order.acknowledging(record(2, 490))  # the partition came back at its committed offset
    assert order.out_of_order == 0


def test_a_message_without_partition_or_offset_is_ignored():
    order = AckOrder()
    order.acknowledging(SimpleNamespace(timestamp=1.0))
    assert order.highest == {}


def test_the_same_offset_twice_is_a_redelivery_warned_not_an_error(caplog):
    order = AckOrder()
    order.acknowledging(record(2, 365))
    with caplog.at_level(logging.WARNING, logger="vigil.processor"):
        order.acknowledging(record(2, 365))
    assert order.out_of_order == 1
    assert [(r.levelno, r.getMessage().split(":")[0]) for r in caplog.records] == [(logging.WARNING,
                                                                                   "record acknowledged again")]


def test_a_run_fetched_again_is_logged_once_and_counted_whole(caplog):
    """After a seek the worker consumer fetches a partition again from its committed offset: a
    CI run acknowledged 216-392 twice, which logged 177 lines."""
    order = AckOrder()
    for offset in range(216, 393):
        order.acknowledging(record(0, offset))
    with caplog.at_level(logging.WARNING, logger="vigil.processor"):
        for offset in range(216, 400):
            order.acknowledging(record(0, offset))
        order.acknowledging(record(0, 300))  # after the run caught up: logged again
    assert order.out_of_order == 177 + 1
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["record acknowledged out of order"] * 2
