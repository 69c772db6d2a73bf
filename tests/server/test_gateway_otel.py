"""``[server] otel = true``: a SERVER span per inference request, continuing the client's trace, with the library's
request and attempt spans under it; collected with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from spoon_llm.errors import ConfigurationError
from spoon_llm.server import create_app
from spoon_llm.testing import ProviderSimulator, Reply, Usage

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

MASTER = "sk-master-otel-0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _config(sim: ProviderSimulator, otel: bool = True) -> dict[str, Any]:
    return {"default_provider": "openai",
            "providers": {"openai": {"api_key": "sk-sim-openai-0123456789", "base_url": sim.openai_base_url,
                                     "model": "gpt-4o-mini"}},
            "server": {"master_key": MASTER, "otel": otel, "access_log": False}}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(simulators: tuple[ProviderSimulator, ProviderSimulator],
                 spans: InMemorySpanExporter) -> AsyncIterator[httpx2.AsyncClient]:
    sim = simulators[0]
    sim.reset()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = create_app(_config(sim), tracer_provider=provider)
    await app.startup()
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gateway",
                                      headers={"authorization": f"Bearer {MASTER}"}) as http:
            yield http
    finally:
        await app.shutdown()
        provider.shutdown()
        sim.reset()


async def test_a_request_span_continues_the_client_trace_with_the_library_spans_under_it(
        client: httpx2.AsyncClient, spans: InMemorySpanExporter, simulators: tuple[ProviderSimulator, Any]) -> None:
    simulators[0].script("openai", Reply(text="traced", usage=Usage(input_tokens=9, output_tokens=2)), times=1)
    response = await client.post("/v1/chat/completions", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                                 json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.kind is SpanKind.SERVER)
    assert server.name == "POST /v1/chat/completions"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 200
    assert attributes["spoon_llm.request_id"] == response.headers["x-request-id"]
    assert attributes["spoon_llm.key_alias"] == "master"
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.provider.name"]) == ("gpt-4o-mini", "openai")
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (9, 2)
    assert MASTER not in repr(attributes)
    # The library's request span (and its attempt span under it) belong to the same trace, under the server span.
    library = [s for s in finished if s is not server]
    assert library and all(s.context.trace_id == server.context.trace_id for s in library)
    request_span = next(s for s in library if s.parent is not None and s.parent.span_id == server.context.span_id)
    assert any(s.parent is not None and s.parent.span_id == request_span.context.span_id for s in library)


async def test_a_refused_request_is_a_span_too_and_an_upstream_failure_an_error(
        client: httpx2.AsyncClient, spans: InMemorySpanExporter, simulators: tuple[ProviderSimulator, Any]) -> None:
    from spoon_llm.testing import Fault

    refused = await client.post("/v1/chat/completions", headers={"authorization": "Bearer wrong"},
                                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 401
    simulators[0].fault("openai", Fault.server_error(), times=None)
    failed = await client.post("/v1/chat/completions",
                               json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert failed.status_code >= 500
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [dict(s.attributes or {})["http.response.status_code"] for s in servers] == [401, failed.status_code]
    assert servers[0].status.status_code is not StatusCode.ERROR
    assert servers[1].status.status_code is StatusCode.ERROR


def test_otel_off_makes_no_tracer(simulators: tuple[ProviderSimulator, Any]) -> None:
    app = create_app(_config(simulators[0], otel=False))
    assert app._tracer is None


def test_otel_setting_is_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"server\.otel"):
        create_app({"server": {"master_key": MASTER, "otel": "sometimes"}})
