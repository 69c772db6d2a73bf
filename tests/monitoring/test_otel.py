"""OpenTelemetryTracer: request and attempt spans with GenAI attributes, checked with the SDK's in-memory exporter."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from spoon_llm.errors import LLMError
from spoon_llm.events import Event
from spoon_llm.monitoring import OpenTelemetryTracer
from spoon_llm.testing import Fault

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def split(spans):
    [request] = [s for s in spans if s.kind == SpanKind.INTERNAL and s.parent is None]
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.attributes["spoon_llm.attempt"])
    return request, attempts


async def test_request_span_with_attempt_children(sim, make_manager, traced):
    provider, exporter = traced
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 1})
    manager.add_observer(OpenTelemetryTracer(provider))
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=2)
    response = await manager.chat("hi", tags={"team": "search"})
    request, attempts = split(exporter.get_finished_spans())
    assert request.name == "chat model-backup"
    attrs = request.attributes
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.system"] == "backup"
    assert attrs["gen_ai.request.model"] == "model-backup" and attrs["gen_ai.response.model"] == response.model
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["spoon_llm.attempts"] == 3 and attrs["spoon_llm.tag.team"] == "search"
    assert [e.name for e in request.events] == ["retry", "fallback"]
    assert len(attempts) == 3
    assert all(a.parent.span_id == request.context.span_id for a in attempts)
    assert all(a.context.trace_id == request.context.trace_id for a in attempts)
    assert [a.name for a in attempts] == ["chat model-primary", "chat model-primary", "chat model-backup"]
    assert [a.attributes.get("error.type") for a in attempts] == ["ServiceUnavailableError"] * 2 + [None]
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert attempts[0].attributes["http.response.status_code"] == 503
    assert attempts[2].attributes["gen_ai.response.id"] == response.request_id
    assert attempts[2].attributes["spoon_llm.deployment"] == "backup"
    assert request.start_time <= attempts[0].start_time and attempts[2].end_time <= request.end_time


async def test_stream_and_failed_request(sim, make_manager, traced):
    provider, exporter = traced
    manager = make_manager({"primary": {"model": "model-primary"}}, retry={"max_retries": 0})
    manager.add_observer(OpenTelemetryTracer(provider))
    chunks = [c async for c in manager.chat_stream("hi")]
    request, _ = split(exporter.get_finished_spans())
    assert request.attributes["spoon_llm.chunk_count"] == len(chunks)
    assert request.attributes["spoon_llm.time_to_first_token"] > 0
    assert "first_token" in [e.name for e in request.events]
    exporter.clear()
    sim.fault("openai", Fault.unauthorized(), times=1)
    with pytest.raises(LLMError):
        await manager.chat("hi")
    request, [attempt] = split(exporter.get_finished_spans())
    assert request.status.status_code == StatusCode.ERROR
    assert request.attributes["error.type"] == "AuthenticationError"
    assert attempt.attributes["error.type"] == "AuthenticationError"


async def test_spans_nest_under_the_applications_span(sim, make_manager, traced):
    provider, exporter = traced
    manager = make_manager({"primary": {"model": "model-primary"}})
    manager.add_observer(OpenTelemetryTracer(provider))
    with provider.get_tracer("app").start_as_current_span("handle-request") as outer:
        await manager.chat("hi")
    request = next(s for s in exporter.get_finished_spans() if s.name == "chat model-primary"
                   and s.kind == SpanKind.INTERNAL)
    assert request.parent.span_id == outer.get_span_context().span_id


def test_open_spans_are_bounded(traced):
    provider, exporter = traced
    tracer = OpenTelemetryTracer(provider, max_open=2)
    for i in range(5):
        tracer.on_event(Event("request_start", f"r{i}", "chat", data={"route": "x"}))
    abandoned = exporter.get_finished_spans()
    assert len(abandoned) == 3 and all(s.attributes["spoon_llm.abandoned"] for s in abandoned)
    tracer.close()
    assert len(exporter.get_finished_spans()) == 5
