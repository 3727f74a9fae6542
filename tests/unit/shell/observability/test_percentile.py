"""The one percentile (nearest rank at round(q * (n - 1))): its edges, and that it never interpolates."""

import random
from collections import deque

import pytest

from vigil.shell.observability.percentile import percentile


def test_no_values_have_no_percentile():
    assert percentile([], 0.5) is None
    assert percentile(deque(), 0.99) is None


def test_one_value_is_every_percentile():
    for q in (0.0, 0.5, 0.99, 1.0):
        assert percentile([7.5], q) == 7.5


def test_p0_is_the_minimum_and_p100_the_maximum():
    values = [3.0, 1.0, 9.0, 4.0, 2.0]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 9.0


def test_nearest_rank_not_interpolated():
    values = list(range(1, 11))  # n = 10: index round(q * 9)
    assert percentile(values, 0.5) == 5  # 4.5 -> 4 (a tie goes to the even index), not 5.5
    assert percentile(values, 0.9) == 9  # 8.1 -> 8
    assert percentile(values, 0.99) == 10  # 8.91 -> 9
    assert percentile([1.0, 2.0], 0.5) == 1.0  # 0.5 -> 0 (even), never 1.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0  # 1.5 -> 2 (even)


def test_ties_and_order_do_not_matter():
    assert percentile([2.0, 2.0, 2.0, 5.0], 0.5) == 2.0
    assert percentile([5.0, 2.0, 2.0, 2.0], 0.5) == 2.0
    assert percentile(deque([0.3, 0.1, 0.2]), 0.5) == 0.2  # any iterable, e.g. a bounded deque
    assert percentile((v for v in [0.3, 0.1, 0.2]), 1.0) == 0.3


def test_always_one_of_the_values():
    rng = random.Random(3)
    values = [rng.random() for _ in range(101)]
    for q in (0.01, 0.25, 0.5, 0.9, 0.99):
        assert percentile(values, q) in values


def test_q_is_a_fraction_not_a_percent():
    with pytest.raises(ValueError):
        percentile([1.0], 99)
    with pytest.raises(ValueError):
        percentile([1.0], -0.1)


def test_same_as_numpy_nearest():
    np = pytest.importorskip("numpy")
    rng = random.Random(5)
    for n in (1, 2, 3, 10, 51, 100, 101, 1000):
        values = [rng.random() for _ in range(n)]
        for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
            assert percentile(values, q) == float(np.quantile(values, q, method="nearest")), (n, q)
