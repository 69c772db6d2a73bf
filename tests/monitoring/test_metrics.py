"""MetricsCollector through its explicit API (the observer side is covered by test_load.py)."""

import pytest

from spoon_llm.errors import RateLimitError
from spoon_llm.events import Event
from spoon_llm.monitoring import MetricsCollector, get_metrics_collector, reset_monitoring
from spoon_llm.types import Attempt, CostInfo, LLMResponse, TokenUsage


def test_provider_stats_count_successes_failures_errors_tokens_and_latency():
    metrics = MetricsCollector()
    metrics.record_request("openai", "chat", 0.100, True, tokens=TokenUsage(input_tokens=10, output_tokens=5),
                           model="gpt-4o")
    metrics.record_request("openai", "chat", 0.300, True, tokens={"prompt_tokens": 1, "completion_tokens": 2},
                           model="gpt-4o", cost=0.5)
    metrics.record_request("openai", "chat", 0.200, False, model="gpt-4o", error=RateLimitError("slow down"))
    metrics.record_request("openai", "chat", 0.050, False, model="gpt-4o", error="TimeoutError")
    stats = metrics.get_provider_stats("openai")
    assert (stats["total_requests"], stats["successful_requests"], stats["failed_requests"]) == (4, 2, 2)
    assert stats["success_rate"] == 0.5
    assert stats["error_counts"] == {"RateLimitError": 1, "TimeoutError": 1}
    assert stats["tokens"] == {"input": 11, "output": 7, "total": 18}
    assert stats["total_cost"] == 0.5
    assert stats["avg_response_time"] == pytest.approx(0.1625)
    assert stats["latency"]["p50"] == pytest.approx(0.1, rel=0.01)
    assert stats["latency"]["p99"] == pytest.approx(0.3, rel=0.01)
    assert metrics.get_model_stats("gpt-4o")["total_requests"] == 4
    assert metrics.get_provider_stats("nobody")["total_requests"] == 0


def test_by_deployment_summary_and_performance():
    metrics = MetricsCollector()
    metrics.record_request("openai", "chat", 0.1, True, tokens=7, model="a", deployment="openai-key1")
    metrics.record_request("openai", "chat", 0.2, True, tokens=3, model="b", deployment="openai-key2")
    metrics.record_request("anthropic", "chat", 0.4, False, model="c", error=RuntimeError)
    assert set(metrics.get_all_stats()) == {"openai", "anthropic"}
    assert set(metrics.get_all_stats(by="deployment")) == {"openai-key1", "openai-key2"}
    assert metrics.get_all_stats(by="model")["b"]["total_tokens"] == 3
    summary = metrics.get_summary()
    assert (summary["total_requests"], summary["failed_requests"], summary["total_tokens"]) == (3, 1, 10)
    assert summary["error_counts"] == {"RuntimeError": 1}
    assert summary["providers"] == ["anthropic", "openai"]
    perf = metrics.get_performance_stats()
    assert perf["avg_response_time"] == pytest.approx(0.7 / 3)
    assert perf["max_response_time"] == pytest.approx(0.4)
    assert perf["p50_response_time"] == pytest.approx(0.2, rel=0.01)
    with pytest.raises(ValueError):
        metrics.get_all_stats(by="colour")


def test_recent_calls_are_a_ring_buffer_and_reset_forgets_everything():
    metrics = MetricsCollector(recent_size=5)
    for i in range(12):
        metrics.record_request("p", "chat", i / 100, True)
    recent = metrics.get_recent_calls()
    assert len(recent) == 5 and recent[-1]["duration"] == 0.11 and recent[0]["duration"] == 0.07
    assert len(metrics.get_recent_calls(limit=2)) == 2
    metrics.reset_stats()
    assert metrics.get_summary()["total_requests"] == 0 and metrics.get_recent_calls() == []


def test_label_values_are_bounded():
    metrics = MetricsCollector(max_series=3)
    for i in range(10):
        metrics.record_request("p", "chat", 0.1, True, model=f"model-{i}")
    models = metrics.get_all_stats(by="model")
    assert len(models) == 4 and models["__other__"]["total_requests"] == 7
    assert metrics.get_provider_stats("p")["total_requests"] == 3


def test_events_feed_request_level_stats_ttft_and_cost():
    metrics = MetricsCollector()
    usage = TokenUsage(input_tokens=4, output_tokens=6)
    common = {"provider": "openai", "model": "m", "deployment": "d"}
    # Calls are counted from the attempt trace that request_end carries (one event per request).
    attempts = [Attempt(provider="openai", model="m", deployment="d0", error_type="RateLimitError", latency=0.01),
                Attempt(provider="openai", model="m", deployment="d", latency=0.2)]
    for event in [
        Event("request_start", "r1", "chat_stream"),
        Event("attempt_start", "r1", "chat_stream", attempt=1, **common),
        Event("fallback", "r1", "chat_stream", attempt=1, error=RateLimitError("x"), **common),
        Event("attempt_start", "r1", "chat_stream", attempt=2, **common),
        Event("first_token", "r1", "chat_stream", latency=0.05, **common),
        Event("request_end", "r1", "chat_stream", attempt=2, success=True, latency=0.25, usage=usage,
              chunk_count=7, response=LLMResponse(cost=CostInfo(total_cost=0.25)), data={"attempts": attempts},
              **common),
        Event("circuit_change", "", deployment="d", data={"old": "closed", "new": "open"}),
        Event("budget_alert", "", data={"threshold": 0.9}),
    ]:
        metrics.on_event(event)
    summary = metrics.get_summary()
    requests = summary["requests"]
    assert (requests["total"], requests["successful"], requests["fallbacks"], requests["retries"]) == (1, 1, 1, 0)
    assert (requests["streams"], requests["stream_chunks"]) == (1, 7)
    assert requests["time_to_first_token"]["p50"] == pytest.approx(0.05, rel=0.01)
    assert summary["total_requests"] == 2 and summary["error_counts"] == {"RateLimitError": 1}
    assert summary["total_cost"] == 0.25 and metrics.get_provider_stats("openai")["total_cost"] == 0.25
    assert summary["circuits"] == {"d": "open"} and summary["budget_alerts"] == 1
    assert metrics.get_deployment_stats("d")["time_to_first_token"]["count"] == 1
    assert metrics.get_performance_stats()["avg_time_to_first_token"] == pytest.approx(0.05)


def test_process_wide_collector_is_resettable():
    first = get_metrics_collector()
    assert get_metrics_collector() is first
    reset_monitoring()
    assert get_metrics_collector() is not first


def _finished(index: int, latency: float = 0.1) -> Event:
    attempt = Attempt(provider="openai", model="m", deployment="d", latency=latency)
    return Event("request_end", f"r{index}", "chat", "openai", "m", "d", success=True, latency=latency,
                 usage=TokenUsage(input_tokens=2, output_tokens=3), cost=0.001, data={"attempts": [attempt]})


def test_queued_requests_are_counted_before_any_read_and_in_order():
    from spoon_llm.monitoring.metrics import BATCH

    metrics = MetricsCollector(recent_size=5)
    for index in range(BATCH * 2 + 7):  # two full batches folded on the way, seven still queued
        metrics.on_event(_finished(index, latency=0.001 * (index + 1)))
    metrics.record_request("openai", "chat", 9.0, True, model="m", deployment="d")  # the explicit API, last
    stats = metrics.get_deployment_stats("d")
    assert stats["total_requests"] == BATCH * 2 + 8
    assert stats["tokens"] == {"input": 2 * (BATCH * 2 + 7), "output": 3 * (BATCH * 2 + 7),
                               "total": 5 * (BATCH * 2 + 7)}
    assert stats["total_cost"] == pytest.approx(0.001 * (BATCH * 2 + 7))
    assert [call["duration"] for call in metrics.get_recent_calls()][-2:] == [pytest.approx(0.001 * (BATCH * 2 + 7)),
                                                                              9.0]
    assert metrics.get_summary()["requests"]["total"] == BATCH * 2 + 7
    assert f"requests={BATCH * 2 + 7}" in repr(metrics)


def test_counts_stay_exact_with_threads_writing_and_reading_at_once():
    import threading

    metrics = MetricsCollector()
    writers, per_writer = 4, 3000
    stop = threading.Event()

    def write(offset: int) -> None:
        for index in range(per_writer):
            metrics.on_event(_finished(offset * per_writer + index))

    def read() -> None:
        while not stop.is_set():
            metrics.get_summary()
            metrics.get_recent_calls(3)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    summary = metrics.get_summary()
    assert summary["total_requests"] == summary["requests"]["total"] == writers * per_writer
    assert summary["tokens"]["total"] == 5 * writers * per_writer


def _varied(index: int) -> Event:
    """Requests of every shape the collector folds: successes, failures, streams, costs, retries, fallbacks."""
    from spoon_llm.errors import ServiceUnavailableError

    deployment = "d" if index % 7 else "e"
    kind = index % 5
    if kind == 4:  # a retry then a fallback
        attempts = [Attempt(provider="openai", model="m", deployment="d", error_type="ServiceUnavailableError",
                            status_code=503, latency=0.01),
                    Attempt(provider="openai", model="m", deployment="e", latency=0.02 + index * 1e-4)]
        return Event("request_end", f"r{index}", "chat", "openai", "m", "e", success=True, latency=0.05,
                     usage=TokenUsage(input_tokens=1, output_tokens=2), cost=0.002, data={"attempts": attempts})
    attempt = Attempt(provider="openai", model="m", deployment=deployment, latency=0.001 * (index % 50 + 1),
                      error_type="ServiceUnavailableError" if kind == 3 else None)
    if kind == 3:
        return Event("request_end", f"r{index}", "chat", "openai", "m", deployment, success=False,
                     error=ServiceUnavailableError("down"), latency=0.03, data={"attempts": [attempt]})
    return Event("request_end", f"r{index}", "chat_stream" if kind == 2 else "chat", "openai", "m", deployment,
                 success=True, latency=attempt.latency + 1e-5, usage=TokenUsage(input_tokens=3, output_tokens=4),
                 cost=0.001 if kind else None, chunk_count=9 if kind == 2 else None, data={"attempts": [attempt]})


def _same(left, right):
    """Equal, floats within rounding (batches add latencies in another order)."""
    if isinstance(left, dict):
        assert left.keys() == right.keys()
        for key in left:
            _same(left[key], right[key])
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            _same(a, b)
    elif isinstance(left, float):
        assert left == pytest.approx(right, rel=1e-12, abs=1e-15)
    else:
        assert left == right


@pytest.mark.parametrize("shape", ["uniform", "mixed"])
def test_batched_and_one_by_one_counting_agree(shape, monkeypatch):
    one_by_one, batched = MetricsCollector(), MetricsCollector()
    one_by_one.batch = 1
    column_batches = []
    fold_uniform = MetricsCollector._fold_uniform

    def spy(self, items):
        counted = fold_uniform(self, items)
        if self is batched:
            column_batches.append(counted)
        return counted

    monkeypatch.setattr(MetricsCollector, "_fold_uniform", spy)
    # "uniform": one deployment, one attempt each (successes, failures, streams, costs); "mixed": retries,
    # fallbacks and two deployments in every batch.
    indexes = [i * 5 + k for i in range(500) for k in range(4)] if shape == "uniform" else range(2000)
    for index in indexes:
        event = _varied(index)
        if shape == "uniform":
            event.deployment = "e"
            event.data["attempts"][0].deployment = "e"
        one_by_one.on_event(event)
        batched.on_event(event)
    first, second = one_by_one.get_summary(), batched.get_summary()
    for summary in (first, second):
        summary.pop("uptime")
    _same(first, second)
    for name in ("d", "e"):
        _same(one_by_one.get_deployment_stats(name), batched.get_deployment_stats(name))
    _same(one_by_one.get_recent_calls(50), batched.get_recent_calls(50))
    assert first["requests"]["total"] == 2000
    # The batched collector counted column by column exactly when the batch allowed it.
    assert column_batches and all(column_batches) == (shape == "uniform")
