"""The streaming quantile sketch: accuracy against exact percentiles, and its memory bound."""

import math
import random

import pytest

from spoon_llm.monitoring import QuantileSketch

QS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact(values, q):
    """Nearest-rank quantile: the smallest value with at least ceil(q * n) values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@pytest.mark.parametrize("distribution", ["lognormal", "uniform", "exponential", "pareto", "bimodal"])
def test_quantiles_are_within_the_relative_accuracy(distribution):
    rng = random.Random(distribution)
    draw = {
        "lognormal": lambda: rng.lognormvariate(-1.0, 1.5),
        "uniform": lambda: rng.uniform(0.001, 30.0),
        "exponential": lambda: rng.expovariate(5.0),
        "pareto": lambda: rng.paretovariate(1.2) / 100,
        "bimodal": lambda: rng.gauss(0.05, 0.005) if rng.random() < 0.9 else rng.gauss(4.0, 0.5),
    }[distribution]
    values = [abs(draw()) + 1e-6 for _ in range(20_000)]
    sketch = QuantileSketch(relative_accuracy=0.01)
    sketch.extend(values)
    for q in QS:
        truth = exact(values, q)
        assert abs(sketch.quantile(q) - truth) <= 0.01 * truth, (q, truth, sketch.quantile(q))
    assert sketch.count == len(values)
    assert sketch.mean == pytest.approx(sum(values) / len(values))
    assert (sketch.min, sketch.max) == (min(values), max(values))


def test_small_samples_use_nearest_rank():
    sketch = QuantileSketch()
    sketch.extend([0.010, 0.400])
    assert sketch.quantile(0.5) == pytest.approx(0.010, rel=0.01)
    assert sketch.quantile(0.95) == pytest.approx(0.400, rel=0.01)
    assert QuantileSketch().quantile(0.5) is None
    assert QuantileSketch().summary()["p99"] is None


def test_memory_stays_bounded_over_a_million_values():
    rng = random.Random(1)
    sketch = QuantileSketch(relative_accuracy=0.01)
    for _ in range(1_000_000):
        sketch.add(rng.lognormvariate(-2.0, 1.0))
    # About 1,250 buckets cover one microsecond to one day at 1%; this data needs a fraction of that.
    assert sketch.bucket_count < 1000
    assert sketch.count == 1_000_000


def test_max_buckets_caps_memory_and_keeps_high_quantiles_accurate():
    rng = random.Random(2)
    values = [10 ** rng.uniform(-9, 6) for _ in range(50_000)]  # fifteen decades: far more buckets than allowed
    sketch = QuantileSketch(relative_accuracy=0.01, max_buckets=200)
    sketch.extend(values)
    assert sketch.bucket_count <= 201  # plus the zero bucket
    for q in (0.9, 0.95, 0.99):
        truth = exact(values, q)
        assert abs(sketch.quantile(q) - truth) <= 0.01 * truth


def test_zero_and_tiny_values_count_in_the_zero_bucket():
    sketch = QuantileSketch()
    sketch.extend([0.0, 0.0, 0.0, 1.0])
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(1.0, rel=0.01)


def test_merge_equals_one_sketch_of_everything():
    rng = random.Random(3)
    a_values = [rng.expovariate(1.0) for _ in range(5000)]
    b_values = [rng.expovariate(0.1) for _ in range(5000)]
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    a.extend(a_values)
    b.extend(b_values)
    both.extend(a_values + b_values)
    a.merge(b)
    assert a.count == both.count and a.quantiles(QS) == both.quantiles(QS)
    with pytest.raises(ValueError):
        a.merge(QuantileSketch(relative_accuracy=0.02))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        QuantileSketch(relative_accuracy=0)
    with pytest.raises(ValueError):
        QuantileSketch().quantile(1.5)
    sketch = QuantileSketch()
    sketch.add(1.0)
    sketch.clear()
    assert sketch.count == 0 and sketch.quantile(0.5) is None


def test_extend_counts_exactly_like_add_one_by_one():
    import random

    rng = random.Random(7)
    values = [0.0, -1.0, 1e-12] + [rng.lognormvariate(-4, 2) for _ in range(5000)]
    one, many = QuantileSketch(max_buckets=64), QuantileSketch(max_buckets=64)
    for index in range(0, len(values), 500):  # several batches, so later ones meet a collapsed sketch
        chunk = values[index:index + 500]
        for value in chunk:
            one.add(value)
        many.extend(chunk)
    assert (many.count, many.zero_count, many.min, many.max) == (one.count, one.zero_count, one.min, one.max)
    assert many.sum == pytest.approx(one.sum, rel=1e-12)
    assert many.bucket_count == one.bucket_count == 65  # 64 plus the zero bucket
    assert many.quantiles((0.5, 0.9, 0.99)) == one.quantiles((0.5, 0.9, 0.99))
