"""Counters and histograms for the Prometheus exporter, kept as plain numbers and exposed at scrape time.

``prometheus_client``'s ``Counter.inc`` and ``Histogram.observe`` take a lock per value and walk the bucket bounds
in Python: five locked updates and a loop for every attempt the gateway makes. The exporter's series change only
from its event handler, which holds one lock per event, so here a child is a bare number (or a list of bucket
counts found by bisection) and :class:`SeriesCollector` turns them into metric families when the registry is
read. The exposition is the same as ``prometheus_client``'s (``_total``, ``_bucket``/``_count``/``_sum``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from prometheus_client import utils as _utils
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

__all__ = ["CounterSeries", "HistogramSeries", "SeriesCollector"]

#: A bucket bound as prometheus_client writes it (``1.0``, ``+Inf``, Go's exponents).
_bound_text = cast(Callable[[float], str], _utils.floatToGoString)


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # le: a value equal to a bound counts in its bucket
        self.sum += amount


class _Series:
    """One metric with label names; :meth:`labels` returns the child for a combination of values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], namespace: str) -> None:
        self.name = f"{namespace}_{name}" if namespace else name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.labelnames)}")
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self._child()
        return child

    def _child(self) -> Any:
        raise NotImplementedError


class CounterSeries(_Series):
    """A counter (exposed as ``<name>_total``)."""

    def _child(self) -> _CounterChild:
        return _CounterChild()

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self.children.items()):
            family.add_metric(values, child.value)
        return family


class HistogramSeries(_Series):
    """A histogram over fixed bucket bounds."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], namespace: str,
                 buckets: Sequence[float]) -> None:
        super().__init__(name, documentation, labelnames, namespace)
        bounds = tuple(sorted(float(b) for b in buckets if b != float("inf")))
        if not bounds:
            raise ValueError(f"{self.name} needs at least one finite bucket bound")
        self.bounds = bounds

    def _child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [_bound_text(b) for b in self.bounds] + ["+Inf"]
        for values, child in list(self.children.items()):
            running = 0
            buckets = []
            for edge, count in zip(edges, list(child.counts), strict=True):
                running += count
                buckets.append((edge, running))
            family.add_metric(values, buckets, child.sum)
        return family


class SeriesCollector:
    """Registered in a ``CollectorRegistry``: exposes the series it was given each time the registry is read."""

    def __init__(self, series: Sequence[CounterSeries | HistogramSeries]) -> None:
        self.series = tuple(series)

    def collect(self) -> Iterator[Any]:
        for series in self.series:
            yield series.family()

    def describe(self) -> Iterator[Any]:
        for series in self.series:
            family = series.family()
            family.samples = []
            yield family
