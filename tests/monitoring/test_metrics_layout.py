"""The metrics queue's tuples are built as literals on the request path; their layouts are declared once beside
their readers. These tests check that what ``on_event`` builds matches the declared layout field by field."""

from __future__ import annotations

from spoon_llm.events import Event
from spoon_llm.monitoring.metrics import MetricsCollector, QueuedRequest, RecentCall, _recent_call
from spoon_llm.types import Attempt, TokenUsage


def _queued(event: Event) -> tuple[object, ...]:
    metrics = MetricsCollector()
    metrics.on_event(event)
    (item,) = metrics._pending  # the literal the request path built, before any fold
    return tuple(item)


def test_a_one_attempt_request_is_queued_in_the_declared_layout() -> None:
    attempt = Attempt(provider="openai", model="m-1", deployment="dep-1", latency=0.25)
    usage = TokenUsage(input_tokens=3, output_tokens=5)
    item = _queued(Event("request_end", "r1", "chat", provider="openai", model="m-1", deployment="dep-1",
                         success=True, latency=0.5, usage=usage, cost=0.125, chunk_count=7,
                         data={"attempts": [attempt]}))
    assert len(item) == len(QueuedRequest._fields)
    row = QueuedRequest(*item)
    assert (row.operation, row.latency, row.outcome, row.input_tokens, row.output_tokens, row.total_tokens,
            row.cost, row.chunks) == ("chat", 0.5, None, 3, 5, 8, 0.125, 7)
    assert (row.provider, row.model, row.deployment) == ("openai", "m-1", "dep-1")
    assert (row.a_provider, row.a_model, row.a_deployment, row.a_error, row.a_latency, row.attempts) == (
        "openai", "m-1", "dep-1", None, 0.25, None)
    recent = RecentCall(*_recent_call(item))
    assert (recent.provider, recent.deployment, recent.method, recent.duration, recent.success, recent.tokens) == (
        "openai", "dep-1", "chat", 0.25, True, 8)


def test_a_request_with_several_attempts_keeps_its_trace() -> None:
    trace = [Attempt(provider="a", deployment="d0", error_type="RateLimitError", latency=0.1),
             Attempt(provider="b", deployment="d1", latency=0.2)]
    row = QueuedRequest(*_queued(Event("request_end", "r2", "embed", success=True, latency=0.3,
                                       data={"attempts": trace})))
    assert row.a_provider is None and row.attempts == trace and row.operation == "embed"
    metrics = MetricsCollector()
    metrics.on_event(Event("request_end", "r2", "embed", success=True, latency=0.3, data={"attempts": trace}))
    calls = metrics.get_recent_calls()
    assert [c["deployment"] for c in calls] == ["d0", "d1"]
