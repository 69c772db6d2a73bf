"""Streaming quantiles in bounded memory: a DDSketch-style log-bucketed histogram.

Every positive value ``v`` falls into bucket ``ceil(log(v) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``;
a bucket's representative value is within relative error ``a`` of every value it holds, so any quantile is
returned within ``a`` (default 1%) of the exact one (Masson, Rim & Lee, "DDSketch", VLDB 2019). Memory is one
counter per occupied bucket: at 1% accuracy, one microsecond to one day needs about 1,250 buckets, whatever the
number of values. ``max_buckets`` caps it anyway by folding the lowest buckets together (the high quantiles that
latency work cares about stay exact to ``a``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from functools import partial
from operator import mul

__all__ = ["QuantileSketch"]

# Values at or below this (including zero and negatives) count in a separate zero bucket.
_MIN_INDEXABLE = 1e-9


class QuantileSketch:
    """Count, sum, min, max and quantiles of a stream of non-negative numbers, within ``relative_accuracy``."""

    __slots__ = ("_buckets", "_floor", "_gamma", "_multiplier", "count", "max", "max_buckets", "min",
                 "relative_accuracy", "sum", "zero_count")

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError("relative_accuracy must be between 0 and 1")
        if max_buckets < 2:
            raise ValueError("max_buckets must be at least 2")
        self.relative_accuracy = relative_accuracy
        self.max_buckets = max_buckets
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._multiplier = 1.0 / math.log(self._gamma)
        # A Counter: extend() counts a batch's keys into it in C (Counter.update of an iterable).
        self._buckets: Counter[int] = Counter()
        self._floor: int | None = None  # after a collapse, lower keys fold into this one
        self.count = 0
        self.zero_count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Record one value (O(1); a rare collapse when a new bucket would exceed ``max_buckets``)."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= _MIN_INDEXABLE:
            self.zero_count += 1
            return
        key = math.ceil(math.log(value) * self._multiplier)
        floor = self._floor
        if floor is not None and key < floor:
            key = floor
        buckets = self._buckets
        if key in buckets:
            buckets[key] += 1
            return
        buckets[key] = 1
        if len(buckets) > self.max_buckets:
            self._collapse()

    def key_of(self, value: float) -> int | None:
        """The bucket ``value`` falls in (``None``: the zero bucket); sketches of equal accuracy share keys."""
        return None if value <= _MIN_INDEXABLE else math.ceil(math.log(value) * self._multiplier)

    def add_keyed(self, value: float, key: int | None) -> None:
        """Record ``value`` whose bucket :meth:`key_of` computed already (one log for several sketches)."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if key is None:
            self.zero_count += 1
            return
        floor = self._floor
        if floor is not None and key < floor:
            key = floor
        buckets = self._buckets
        if key in buckets:
            buckets[key] += 1
            return
        buckets[key] = 1
        if len(buckets) > self.max_buckets:
            self._collapse()

    def extend(self, values: Iterable[float]) -> None:
        """Record many values at once: counted with builtins, a fraction of the cost of :meth:`add` per value."""
        batch = values if isinstance(values, (list, tuple)) else list(values)
        if not batch:
            return
        self.count += len(batch)
        self.sum += sum(batch)
        low, high = min(batch), max(batch)
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        log, ceil, multiplier = math.log, math.ceil, self._multiplier
        if low > _MIN_INDEXABLE and self._floor is None:
            # The common case, one C pipeline: log, scale, ceil, count (no list, no Python loop per value).
            self._buckets.update(map(ceil, map(partial(mul, multiplier), map(log, batch))))
            if len(self._buckets) > self.max_buckets:
                self._collapse()
            return
        if low > _MIN_INDEXABLE:
            keys = [ceil(log(value) * multiplier) for value in batch]
        else:
            keys = [ceil(log(value) * multiplier) for value in batch if value > _MIN_INDEXABLE]
            self.zero_count += len(batch) - len(keys)
        floor = self._floor
        if floor is not None:
            keys = [key if key >= floor else floor for key in keys]
        buckets = self._buckets
        for key, number in Counter(keys).items():
            buckets[key] = buckets.get(key, 0) + number
        if len(buckets) > self.max_buckets:
            self._collapse()

    def _collapse(self) -> None:
        # Fold the lowest buckets into one so that exactly max_buckets remain.
        keys = sorted(self._buckets)
        excess = len(keys) - self.max_buckets
        target = keys[excess]
        folded = sum(self._buckets.pop(k) for k in keys[:excess])
        self._buckets[target] += folded
        self._floor = target

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within the relative accuracy; ``None`` when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be between 0 and 1")
        if self.count == 0:
            return None
        # Nearest rank: the smallest value with at least ceil(q * count) values at or below it.
        rank = max(math.ceil(q * self.count) - 1, 0)
        seen = self.zero_count
        if seen > rank:
            return min(max(0.0, self.min), self.max)
        estimate = self.max
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen > rank:
                estimate = 2.0 * self._gamma**key / (self._gamma + 1.0)
                break
        # Clamping to the exact extremes only ever moves the estimate closer to the truth.
        return min(max(estimate, self.min), self.max)

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles at once."""
        return [self.quantile(q) for q in qs]

    @property
    def mean(self) -> float | None:
        """Exact arithmetic mean; ``None`` when empty."""
        return self.sum / self.count if self.count else None

    @property
    def bucket_count(self) -> int:
        """Occupied buckets: the sketch's memory, in counters."""
        return len(self._buckets) + (1 if self.zero_count else 0)

    def merge(self, other: QuantileSketch) -> None:
        """Add every value recorded by ``other`` (same relative accuracy required)."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("cannot merge sketches of different relative accuracy")
        for key, n in other._buckets.items():
            if self._floor is not None and key < self._floor:
                key = self._floor
            self._buckets[key] = self._buckets.get(key, 0) + n
        if len(self._buckets) > self.max_buckets:
            self._collapse()
        self.count += other.count
        self.zero_count += other.zero_count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def summary(self, scale: float = 1.0) -> dict[str, float | int | None]:
        """``count``, ``avg``, ``min``, ``max``, ``p50``, ``p95``, ``p99``, each value multiplied by ``scale``."""
        if not self.count:
            return {"count": 0, "avg": None, "min": None, "max": None, "p50": None, "p95": None, "p99": None}
        p50, p95, p99 = (v * scale if v is not None else None for v in self.quantiles((0.5, 0.95, 0.99)))
        return {"count": self.count, "avg": self.sum / self.count * scale, "min": self.min * scale,
                "max": self.max * scale, "p50": p50, "p95": p95, "p99": p99}

    def clear(self) -> None:
        """Forget every value."""
        self._buckets.clear()
        self._floor = None
        self.count = self.zero_count = 0
        self.sum = 0.0
        self.min, self.max = math.inf, -math.inf

    def __repr__(self) -> str:
        return (f"QuantileSketch(count={self.count}, buckets={self.bucket_count}, "
                f"relative_accuracy={self.relative_accuracy})")
