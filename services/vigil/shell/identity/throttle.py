"""Login rate limiting: failed attempts per username and per client address, in a sliding window.

In memory, per process: a restart forgets, which only gives an attacker back one window.
Bounded: the oldest keys are forgotten first when there are too many.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class Throttle:
    def __init__(self, per_key: int, window_s: float, capacity: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_key, self.window_s, self.capacity, self.clock = per_key, window_s, capacity, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        horizon = self.clock() - self.window_s
        while times and times[0] < horizon:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        """Whether `key` has used up its failures in the window."""
        return len(self._recent(key)) >= self.per_key

    def retry_after_s(self, key: str) -> int:
        times = self._recent(key)
        return max(1, int(times[0] + self.window_s - self.clock()) + 1) if times else 1

    def failed(self, key: str) -> None:
        times = self._recent(key)
        times.append(self.clock())
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
