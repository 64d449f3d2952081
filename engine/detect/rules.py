"""Condition primitives the detectors are built from.

- :class:`Sustained`: a condition that must hold continuously for a window ("P99 > 1000 ms for 90 s").
- :class:`Consecutive`: N observations in a row ("3 consecutive failed health checks").
- :class:`WindowedCount`: at least N events inside a sliding window ("100 errors in 60 s").
- :class:`Baseline`: a rolling baseline (exponentially weighted) that learns only from normal
  values, for "baseline < 1 %" and spike-factor rules.
"""
from __future__ import annotations

import operator
from collections import deque
from typing import Callable

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": lambda a, b: abs(a - b) < 1e-9,
    "!=": lambda a, b: abs(a - b) >= 1e-9,
}


def compare(value: float, op: str, threshold: float) -> bool:
    return OPS[op](value, threshold)


class Sustained:
    """Tracks since when a condition has held; fires once it has held for ``window_ms``."""

    __slots__ = ("window_ms", "since_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.since_ms: int | None = None

    def update(self, holds: bool, now_ms: int) -> bool:
        if not holds:
            self.since_ms = None
            return False
        if self.since_ms is None:
            self.since_ms = now_ms
        return now_ms - self.since_ms >= self.window_ms

    @property
    def holding(self) -> bool:
        return self.since_ms is not None


class Consecutive:
    """Counts observations in a row; fires when the count reaches ``n``."""

    __slots__ = ("n", "count")

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0

    def update(self, hit: bool) -> bool:
        self.count = self.count + 1 if hit else 0
        return self.count >= self.n


class WindowedCount:
    """Counts events (possibly fractional, per tick) in a sliding time window."""

    __slots__ = ("window_ms", "threshold", "_items", "total")

    def __init__(self, window_ms: int, threshold: float) -> None:
        self.window_ms = window_ms
        self.threshold = threshold
        self._items: deque[tuple[int, float]] = deque()
        self.total = 0.0

    def update(self, count: float, now_ms: int) -> bool:
        self._items.append((now_ms, count))
        self.total += count
        limit = now_ms - self.window_ms
        while self._items and self._items[0][0] <= limit:
            self.total -= self._items.popleft()[1]
        return self.total >= self.threshold


class Baseline:
    """A rolling baseline that learns only while the value looks normal.

    ``half_life_s`` sets how fast it adapts. While a value is anomalous (above ``ceiling`` times the
    baseline, or flagged by the caller), the baseline is frozen, so an incident cannot teach the
    detector that the incident is normal.
    """

    __slots__ = ("alpha", "value", "samples")

    def __init__(self, half_life_s: float = 600.0, tick_s: float = 1.0, initial: float | None = None) -> None:
        self.alpha = 1.0 - 0.5 ** (tick_s / half_life_s)
        self.value = initial
        self.samples = 0

    def update(self, x: float, anomalous: bool = False) -> float:
        if self.value is None:
            self.value = x
        elif not anomalous:
            self.value += self.alpha * (x - self.value)
        self.samples += 1
        return self.value

    def spike_factor(self, x: float) -> float:
        if not self.value:
            return 0.0
        return x / self.value
