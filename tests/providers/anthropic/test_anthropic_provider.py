"""AnthropicProvider end to end: the real SDK over real sockets to the simulator, plus MockTransport faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from spoon_llm.errors import (
    AuthenticationError,
    ConfigurationError,
    ModelNotFoundError,
    NetworkError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseParsingError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
)
from spoon_llm.providers.anthropic import AnthropicProvider
from spoon_llm.registry import LLMProviderRegistry
from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall, Usage
from spoon_llm.transport import NativeSettings
from spoon_llm.types import LLMResponse, LLMResponseChunk, Message

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def collect(stream: AsyncIterator[LLMResponseChunk]) -> tuple[list[LLMResponseChunk], LLMResponseChunk]:
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].kind == "final"
    return chunks, chunks[-1]


def as_response(final: LLMResponseChunk, reasoning: str | None = None) -> LLMResponse:
    return LLMResponse(content=final.content, tool_calls=final.tool_calls, finish_reason=final.finish_reason,
                       native_finish_reason=final.native_finish_reason, usage=final.usage, metadata=final.metadata,
                       reasoning=reasoning)


async def test_registry_builds_the_provider_lazily(sim: ProviderSimulator) -> None:
    registry = LLMProviderRegistry(load_plugins=False)
    assert registry.get_provider_class("anthropic") is AnthropicProvider
    provider = await registry.get_initialized_provider(
        "anthropic", {"api_key": "sk-ant-test-1234567890", "base_url": sim.anthropic_base_url})
    try:
        assert (await provider.chat([{"role": "user", "content": "hi"}])).content == "Simulated reply to: hi"
    finally:
        await provider.cleanup()


async def test_multi_turn_tool_conversation_round_trips(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("anthropic", Reply(text="Let me check.", tool_calls=[
        ToolCall("get_weather", {"city": "Paris"}, id="toolu_p"),
        ToolCall("get_weather", {"city": "Rome"}, id="toolu_r")]),
        times=1)
    sim.script("anthropic", Reply(text="Paris 21C, Rome 18C."), times=1)
    history: list[Message] = [Message.system("You are terse."), Message.user("Weather in Paris and Rome?")]

    first = await provider.chat_with_tools(history, [WEATHER], tool_choice="auto")
    assert first.content == "Let me check."
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("toolu_p", "get_weather", {"city": "Paris"}), ("toolu_r", "get_weather", {"city": "Rome"})]
    assert (first.finish_reason, first.native_finish_reason) == ("tool_calls", "tool_use")
    assert "get_weather" not in first.content  # tool JSON never leaks into the text

    history += [first.to_message(), Message.tool("toolu_p", {"temp": 21}), Message.tool("toolu_r", {"temp": 18})]
    second = await provider.chat_with_tools(history, [WEATHER])
    assert second.content == "Paris 21C, Rome 18C."
    assert second.finish_reason == "stop"

    bodies = [r.body for r in sim.requests_for("anthropic", "chat")]
    assert bodies[0]["system"] == "You are terse."
    assert bodies[0]["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                                   "input_schema": WEATHER["parameters"]}]
    assert bodies[0]["tool_choice"] == {"type": "auto"}
    assert bodies[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_p", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_r", "name": "get_weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_p", "content": '{"temp": 21}'},
            {"type": "tool_result", "tool_use_id": "toolu_r", "content": '{"temp": 18}'},
        ]},
    ]


async def test_streamed_tool_conversation_with_thinking_round_trips(sim: ProviderSimulator, make_provider: Any
                                                                    ) -> None:
    provider = await make_provider()
    sim.script("anthropic", Reply(text="Checking.", reasoning="Need the weather tool.",
                                  tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="toolu_o")],
                                  usage=Usage(input_tokens=50, output_tokens=30, cached_tokens=20,
                                              cache_write_tokens=10)), times=1)
    sim.script("anthropic", Reply(text="It is cold.", chunks=["It ", "is ", "cold."]), times=1)
    history: list[Message] = [Message.user("Weather in Oslo?")]

    chunks, final = await collect(provider.chat_stream(history, tools=[WEATHER], thinking=2048))
    reasoning = "".join(c.reasoning_delta for c in chunks if c.kind == "reasoning")
    assert reasoning == "Need the weather tool."
    assert "".join(c.delta for c in chunks if c.kind == "text") == final.content == "Checking."
    assert [(c.id, c.arguments) for c in final.tool_calls] == [("toolu_o", {"city": "Oslo"})]
    assert final.finish_reason == "tool_calls"
    usage = final.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.output_tokens) == (
        50, 20, 10, 30)
    thinking_block = final.metadata["provider_data"]["anthropic"]["content"][0]
    assert thinking_block["type"] == "thinking" and thinking_block["signature"]

    history += [as_response(final, reasoning).to_message(), Message.tool("toolu_o", "-5C")]
    chunks, final = await collect(provider.chat_stream(history, tools=[WEATHER], thinking=2048))
    assert [c.delta for c in chunks if c.kind == "text"] == ["It ", "is ", "cold."]
    assert final.finish_reason == "stop"
    second = sim.requests_for("anthropic", "chat")[1].body
    assert second["stream"] is True
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assistant = second["messages"][1]["content"]
    assert assistant[0] == thinking_block  # thinking goes back with its signature, first in the turn
    assert assistant[1:] == [{"type": "text", "text": "Checking."},
                             {"type": "tool_use", "id": "toolu_o", "name": "get_weather", "input": {"city": "Oslo"}}]
    assert second["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_o", "content": "-5C"}]}


async def test_stream_callbacks_and_completion(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    seen: list[str] = []

    async def on_chunk(chunk: LLMResponseChunk) -> None:
        seen.append(chunk.kind)

    _, final = await collect(provider.chat_stream([{"role": "user", "content": "hello"}], callbacks=[on_chunk]))
    assert final.content == "Simulated reply to: hello"
    assert seen[-1] == "final" and "text" in seen
    assert (await provider.completion("ping")).content == "Simulated reply to: ping"


async def test_configuration_is_honoured(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(max_tokens=123, temperature=0.5, extra_headers={"x-team": "blue"},
                                   extra_body={"service_tier": "auto"}, max_connections=7,
                                   max_keepalive_connections=3, keepalive_expiry=9, timeout=12, connect_timeout=2)
    await provider.chat("hi")
    request = sim.last_request("anthropic")
    assert request.body["max_tokens"] == 123
    assert request.body["temperature"] == 0.5
    assert request.body["service_tier"] == "auto"
    assert request.header("x-team") == "blue"
    assert request.header("x-api-key") != "sk-ant-test-0000000000"  # masked by the simulator
    assert request.header("x-stainless-retry-count") in (None, "0")
    if provider.transport_name == "sdk":
        http = provider._client._client
        assert http.timeout == httpx2.Timeout(12, connect=2)
        pool = http._transport._pool
        assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (7, 3, 9)
    else:
        assert provider._native.settings == NativeSettings(timeout=12, connect_timeout=2, max_connections=7,
                                                           keepalive_expiry=9)
        assert provider._native.connector_limit == 7


async def test_auto_cache_option_marks_breakpoints(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(options={"auto_cache": True})
    await provider.chat([Message.system("Long stable instructions."), Message.user("q")], tools=[WEATHER])
    body = sim.last_request("anthropic").body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_count_tokens_health_and_models(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    count = await provider.count_tokens([Message.system("sys"), Message.user("count these words")], tools=[WEATHER])
    assert count > 0
    counted = sim.requests_for("anthropic", "count_tokens")[0].body
    assert set(counted) == {"model", "messages", "system", "tools"}
    assert await provider.health_check() is True
    assert sim.requests_for("anthropic", "chat") == []  # no paid completion
    models = await provider.list_models()
    assert models and all(model.startswith("claude") for model in models)
    sim.fault("anthropic", Fault.unauthorized(), endpoint="models")
    assert await provider.health_check() is False


@pytest.mark.parametrize(("fault", "cls", "status"), [
    (Fault.rate_limited(retry_after=2), RateLimitError, 429),
    (Fault.overloaded(), ServiceUnavailableError, 529),
    (Fault.unavailable(), ServiceUnavailableError, 503),
    (Fault.server_error(), ProviderUnavailableError, 500),
    (Fault.unauthorized(), AuthenticationError, 401),
    (Fault.model_not_found(), ModelNotFoundError, 404),
    (Fault.context_length_exceeded(limit=1000), TokenLimitError, 400),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_http_faults_map_to_our_errors(sim: ProviderSimulator, make_provider: Any, fault: Fault, cls: type,
                                             status: int, stream: bool) -> None:
    provider = await make_provider()
    sim.fault("anthropic", fault)
    with pytest.raises(cls) as info:
        if stream:
            await collect(provider.chat_stream("hi"))
        else:
            await provider.chat("hi")
    error = info.value
    assert error.status_code == status
    assert error.provider == "anthropic"
    assert error.model == "claude-sonnet-4-5"
    assert error.request_id and error.request_id.startswith("req_")
    if provider.transport_name == "sdk":  # the native transport reads the status itself: no SDK exception
        assert isinstance(error.__cause__, Exception)
    if status == 429:
        assert error.retry_after == 2.0 and error.retryable
    assert len(sim.requests_for("anthropic", "chat")) == 1  # the SDK did not retry


async def test_timeouts_connection_failures_and_bad_json(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(timeout=5)
    sim.fault("anthropic", Fault.slow(2))
    with pytest.raises(TimeoutError):
        await provider.chat("hi", timeout=0.2)
    sim.fault("anthropic", Fault.connection_reset())
    with pytest.raises(NetworkError) as info:
        await provider.chat("hi")
    assert info.value.retryable
    sim.fault("anthropic", Fault.malformed_json())
    with pytest.raises(ResponseParsingError):
        await provider.chat("hi")


async def test_stream_cut_mid_way_reports_what_arrived(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("anthropic", Reply(text="one two three four five six", chunks=["one ", "two ", "three ", "four ",
                                                                              "five ", "six"]))
    for fault in (Fault.disconnect(after=5), Fault.truncated_stream(after=5)):
        sim.fault("anthropic", fault)
        seen: list[str] = []
        with pytest.raises(StreamInterruptedError) as info:
            async for chunk in provider.chat_stream("hi"):
                seen.append(chunk.delta)
        assert info.value.partial_content == "".join(seen)
        assert seen  # some text reached the caller first
    sim.fault("anthropic", Fault.disconnect(after=1))
    with pytest.raises(NetworkError) as cut:
        await collect(provider.chat_stream("hi"))
    assert not isinstance(cut.value, StreamInterruptedError)  # nothing reached the caller: still retryable


async def test_not_initialised_and_missing_key() -> None:
    provider = AnthropicProvider()
    with pytest.raises(ConfigurationError, match="not initialised"):
        await provider.chat("hi")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        await provider.initialize({"model": "claude-x"})
    assert await provider.health_check() is False
    with pytest.raises(ValidationError):
        await provider.embed("text")


# -- httpx2.MockTransport: faults the simulator does not script ------------------------------------------


def mock_provider(handler: Any) -> tuple[AnthropicProvider, httpx2.AsyncClient]:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return AnthropicProvider(http_client=http), http


async def test_in_band_stream_error_is_raised_mapped() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {
            "input_tokens": 1, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                                          "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                                                                    "text": "Hi"}}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]
    payload = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()
    provider, http = mock_provider(lambda request: httpx2.Response(
        200, headers={"content-type": "text/event-stream", "request-id": "req_x"}, content=payload))
    await provider.initialize({"api_key": "sk-ant-test-1234567890", "base_url": "http://127.0.0.1:9"})
    deltas = []
    with pytest.raises(ServiceUnavailableError) as info:
        async for chunk in provider.chat_stream("hi"):
            deltas.append(chunk.delta)
    assert deltas == ["Hi"]
    assert info.value.message == "Overloaded" and info.value.retryable
    await provider.cleanup()
    await http.aclose()


async def test_retry_after_ms_and_html_error_bodies() -> None:
    responses = [
        httpx2.Response(529, headers={"retry-after-ms": "1500", "content-type": "application/json"},
                        json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        httpx2.Response(502, headers={"content-type": "text/html"}, content=b"<html>Bad gateway</html>"),
    ]
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return responses[len(calls) - 1]

    provider, http = mock_provider(handler)
    await provider.initialize({"api_key": "sk-ant-test-1234567890", "base_url": "http://127.0.0.1:9"})
    with pytest.raises(ServiceUnavailableError) as info:
        await provider.chat("hi")
    assert info.value.retry_after == 1.5
    with pytest.raises(ProviderUnavailableError) as bad:
        await provider.chat("hi")
    assert bad.value.status_code == 502 and "Bad gateway" in bad.value.message
    assert len(calls) == 2  # max_retries=0: one request per call
    await provider.cleanup()
    await http.aclose()


async def test_injected_sdk_client_is_used_and_not_closed() -> None:
    class FakeSDK:
        """Stands in for AsyncAnthropic: only ``post`` is used on the chat path."""

        def __init__(self) -> None:
            self.bodies: list[dict[str, Any]] = []

        async def post(self, path: str, **kwargs: Any) -> httpx2.Response:
            self.bodies.append(kwargs["body"])
            return httpx2.Response(200, headers={"request-id": "req_fake"}, json={
                "id": "msg", "model": "claude-fake", "content": [{"type": "text", "text": "fake"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}})

    fake = FakeSDK()
    provider = AnthropicProvider(client=fake)  # type: ignore[arg-type]
    await provider.initialize({"api_key": "sk-ant-test-1234567890"})
    response = await provider.chat("hi")
    assert (response.content, response.model, response.request_id) == ("fake", "claude-fake", "req_fake")
    assert fake.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]
    await provider.cleanup()


@pytest.mark.parametrize(("finish", "native", "ours"), [
    ("stop", "end_turn", "stop"), ("length", "max_tokens", "length"), ("content_filter", "refusal", "content_filter"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_finish_reasons(sim: ProviderSimulator, make_provider: Any, finish: str, native: str, ours: str,
                              stream: bool) -> None:
    provider = await make_provider()
    sim.script("anthropic", Reply(text="partial", finish_reason=finish))
    if stream:
        _, final = await collect(provider.chat_stream("hi"))
        got = (final.finish_reason, final.native_finish_reason)
    else:
        response = await provider.chat("hi")
        got = (response.finish_reason, response.native_finish_reason)
    assert got == (ours, native)


async def test_structured_output_through_output_config(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    response = await provider.chat("Give me a name", response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    assert json.loads(response.content) == {"name": "simulated"}
    assert sim.last_request("anthropic").body["output_config"] == {"format": {"type": "json_schema",
                                                                              "schema": schema}}


async def test_a_caller_may_stop_a_stream_early(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("anthropic", Reply(text="one two three four five six seven eight nine ten eleven twelve"))
    for _ in range(3):
        async for chunk in provider.chat_stream("hi"):
            if chunk.kind == "text":
                break
    assert (await provider.chat("again")).content
