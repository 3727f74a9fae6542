"""Per-vital rolling state: recent values, trends, variability and a personal baseline.

Everything is O(1) per reading and time-aware (exponential smoothing with time constants in
seconds), so the same state works at any sampling rate and costs a few hundred bytes a vital.
"""

from __future__ import annotations

import math

_exp = math.exp
RECENT = 5  # values in the median window: removes single-sample spikes, adds little delay
FAST_TAU_S = 5 * 60.0
SLOW_TAU_S = 30 * 60.0
BASELINE_TAU_S = 24 * 3600.0

# Population priors (mean, sd) used until a personal baseline is known.
POPULATION_PRIOR: dict[str, tuple[float, float]] = {
    "hr": (72.0, 10.0),
    "spo2": (97.0, 1.5),
    "rr": (15.0, 2.5),
    "temp": (36.8, 0.35),
    "sbp": (125.0, 12.0),
    "dbp": (78.0, 8.0),
}


class VitalTrack:
    """Rolling state of one vital sign of one patient, trusted values only."""

    __slots__ = (
        "recent", "last_value", "last_t", "fast", "slow", "variability",
        "baseline_mean", "baseline_var", "baseline_t", "baseline_n", "count",
    )

    def __init__(self, prior_mean: float, prior_sd: float) -> None:
        self.recent: list[float] = []
        self.last_value: float | None = None
        self.last_t: float = -math.inf
        self.fast = prior_mean
        self.slow = prior_mean
        self.variability = 0.0
        self.baseline_mean = prior_mean
        self.baseline_var = prior_sd * prior_sd
        self.baseline_t: float | None = None
        self.baseline_n = 0
        self.count = 0

    def add(self, value: float, t: float) -> None:
        recent = self.recent
        recent.append(value)
        if len(recent) > RECENT:
            del recent[0]
        last_value = self.last_value
        if last_value is None:
            self.fast = self.slow = value
        else:
            dt = t - self.last_t
            if dt > 0:
                a_fast = 1.0 - _exp(-dt / FAST_TAU_S)
                fast = self.fast
                self.fast = fast + a_fast * (value - fast)
                slow = self.slow
                self.slow = slow + (1.0 - _exp(-dt / SLOW_TAU_S)) * (value - slow)
                variability = self.variability
                self.variability = variability + a_fast * (abs(value - last_value) - variability)
        self.last_value = value
        self.last_t = t
        self.count += 1

    def learn_baseline(self, value: float, t: float) -> None:
        """Fold a value into the personal baseline (only while the patient is judged stable)."""
        if self.baseline_t is None:
            self.baseline_t = t
            self.baseline_n = 1
            return
        dt = t - self.baseline_t
        if dt <= 0:
            return
        # Early on, learn quickly (1/n); later, forget slowly with a 24 h time constant.
        self.baseline_n += 1
        alpha = 1.0 - _exp(-dt / BASELINE_TAU_S)
        early = 1.0 / (self.baseline_n + 20)
        if early > alpha:  # max(alpha, early), as before
            alpha = early
        mean = self.baseline_mean
        delta = value - mean
        self.baseline_mean = mean + alpha * delta
        self.baseline_var = (1.0 - alpha) * (self.baseline_var + alpha * delta * delta)
        self.baseline_t = t

    def current(self, t: float, max_age_s: float) -> float | None:
        """Median of the recent trusted values, or None when the newest is too old."""
        if self.last_value is None or t - self.last_t > max_age_s:
            return None
        recent = self.recent
        n = len(recent)
        if n == RECENT and RECENT % 2:  # the usual case: a full, odd-sized window
            return sorted(recent)[RECENT // 2]
        if n == 1:
            return recent[0]
        ordered = sorted(recent)
        mid = n // 2
        return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    def baseline_sd(self) -> float:
        return math.sqrt(self.baseline_var) if self.baseline_var > 0 else 0.0

    def zscore(self, value: float) -> float:
        sd = self.baseline_sd()
        return (value - self.baseline_mean) / sd if sd > 1e-9 else 0.0
