"""The exporter's plain-number series expose exactly what prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from spoon_llm.monitoring._prom_series import CounterSeries, HistogramSeries, SeriesCollector

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
LABELS = st.sampled_from([("a", "x"), ("a", "y"), ("b", "x")])
# Values on the bounds themselves included: a value equal to a bound counts in that bound's bucket (le).
VALUES = st.one_of(st.sampled_from(BOUNDS), st.floats(min_value=0, max_value=1000, allow_nan=False))


def _lines(registry: CollectorRegistry) -> list[str]:
    # prometheus_client's own metrics add *_created samples (a timestamp): not part of what is compared.
    return sorted(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(LABELS, VALUES), max_size=40))
def test_same_exposition_as_prometheus_client(observations: list[tuple[tuple[str, str], float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = CounterSeries("calls", "Calls.", ["kind", "where"], "t")
    histogram = HistogramSeries("latency_seconds", "Latency.", ["kind", "where"], "t", BOUNDS)
    ours.register(SeriesCollector([counter, histogram]))
    reference_counter = Counter("calls", "Calls.", ["kind", "where"], namespace="t", registry=theirs)
    reference_histogram = Histogram("latency_seconds", "Latency.", ["kind", "where"], namespace="t",
                                    registry=theirs, buckets=BOUNDS)
    for labels, value in observations:
        counter.labels(*labels).inc(value)
        histogram.labels(*labels).observe(value)
        reference_counter.labels(*labels).inc(value)
        reference_histogram.labels(*labels).observe(value)
    assert _lines(ours) == _lines(theirs)


def test_labels_must_match_the_label_names() -> None:
    counter = CounterSeries("calls", "Calls.", ["kind"], "t")
    with pytest.raises(ValueError, match="kind"):
        counter.labels("a", "b")
