"""GeminiProvider end to end: google-genai over real sockets to the simulator, plus MockTransport faults."""

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
from spoon_llm.providers.gemini import GeminiProvider
from spoon_llm.providers.gemini._convert import SYNTHETIC_PREFIX
from spoon_llm.providers.gemini._native import NativeTransport
from spoon_llm.providers.gemini._transport import PublicSdkTransport, RawSdkTransport
from spoon_llm.registry import LLMProviderRegistry
from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall, Usage
from spoon_llm.transport import NativeSettings
from spoon_llm.types import LLMResponse, LLMResponseChunk, Message

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
# The three ways a request can travel: natively, through google-genai's request layer, or its public methods.
SDK_APIS = pytest.mark.parametrize(("transport", "options"), [
    pytest.param("native", {}, id="native"), pytest.param("sdk", {}, id="raw"),
    pytest.param("sdk", {"gemini_sdk_api": "public"}, id="public")])


async def collect(stream: AsyncIterator[LLMResponseChunk]) -> tuple[list[LLMResponseChunk], LLMResponseChunk]:
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].kind == "final"
    return chunks, chunks[-1]


def as_response(final: LLMResponseChunk) -> LLMResponse:
    return LLMResponse(content=final.content, tool_calls=final.tool_calls, finish_reason=final.finish_reason,
                       native_finish_reason=final.native_finish_reason, usage=final.usage, metadata=final.metadata)


async def test_registry_builds_the_provider_lazily(sim: ProviderSimulator) -> None:
    registry = LLMProviderRegistry(load_plugins=False)
    assert registry.get_provider_class("gemini") is GeminiProvider
    provider = await registry.get_initialized_provider(
        "gemini", {"api_key": "AIzaSyTEST00000000000000000", "base_url": sim.gemini_base_url})
    try:
        assert (await provider.chat([{"role": "user", "content": "hi"}])).content == "Simulated reply to: hi"
    finally:
        await provider.cleanup()


@SDK_APIS
async def test_multi_turn_tool_conversation_round_trips(sim: ProviderSimulator, make_provider: Any,
                                                        options: dict[str, str], transport: str) -> None:
    provider = await make_provider(options=options)
    expected = NativeTransport if transport == "native" else PublicSdkTransport if options else RawSdkTransport
    assert isinstance(provider._transport, expected)
    sim.script("gemini", Reply(text="Let me check.", tool_calls=[
        ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"}, id="fc_rome")]), times=1)
    sim.script("gemini", Reply(text="Paris 21C, Rome 18C.", usage=Usage(input_tokens=40, output_tokens=9,
                                                                        cached_tokens=8)), times=1)
    history: list[Message] = [Message.system("You are terse."), Message.user("Weather in Paris and Rome?")]

    first = await provider.chat_with_tools(history, [WEATHER], tool_choice="auto")
    assert first.content == "Let me check."
    paris, rome = first.tool_calls
    assert paris.id is not None and paris.id.startswith(SYNTHETIC_PREFIX)
    assert (paris.name, paris.arguments) == ("get_weather", {"city": "Paris"})
    assert (rome.id, rome.arguments) == ("fc_rome", {"city": "Rome"})
    assert (first.finish_reason, first.native_finish_reason) == ("tool_calls", "STOP")

    history += [first.to_message(), Message.tool(paris.id, {"temp": 21}), Message.tool("fc_rome", "18C")]
    second = await provider.chat_with_tools(history, [WEATHER])
    assert second.content == "Paris 21C, Rome 18C."
    assert second.finish_reason == "stop"
    assert second.usage is not None
    assert (second.usage.input_tokens, second.usage.cached_input_tokens, second.usage.output_tokens) == (40, 8, 9)

    bodies = [r.body for r in sim.requests_for("gemini", "chat")]
    assert bodies[0]["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    declaration = bodies[0]["tools"][0]["functionDeclarations"][0]
    assert (declaration["name"], declaration["description"]) == ("get_weather", "Weather for a city")
    assert declaration["parameters"]["properties"]["city"]["type"].lower() == "string"
    assert bodies[0]["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    contents = bodies[1]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"id": "fc_rome", "name": "get_weather", "args": {"city": "Rome"}}},
    ] or [_sorted(p) for p in contents[1]["parts"]] == [
        {"text": "Let me check."},
        {"functionCall": {"args": {"city": "Paris"}, "name": "get_weather"}},
        {"functionCall": {"args": {"city": "Rome"}, "id": "fc_rome", "name": "get_weather"}},
    ]
    assert [_sorted(p) for p in contents[2]["parts"]] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"id": "fc_rome", "name": "get_weather", "response": {"result": "18C"}}},
    ]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


@SDK_APIS
async def test_streamed_tool_conversation(sim: ProviderSimulator, make_provider: Any, options: dict[str, str]
                                          ) -> None:
    provider = await make_provider(options=options)
    sim.script("gemini", Reply(text="Checking the weather now.", reasoning="Need the tool.",
                               tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), times=1)
    sim.script("gemini", Reply(text="It is cold in Oslo today."), times=1)
    history: list[Message] = [Message.user("Weather in Oslo?")]

    chunks, final = await collect(provider.chat_stream(history, tools=[WEATHER], thinking=True))
    assert "".join(c.delta for c in chunks if c.kind == "text") == final.content == "Checking the weather now."
    assert "".join(c.reasoning_delta for c in chunks if c.kind == "reasoning") == "Need the tool."
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert final.finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.reasoning_tokens > 0

    call_id = final.tool_calls[0].id
    assert call_id is not None
    history += [as_response(final).to_message(), Message.tool(call_id, "-5C")]
    chunks, final = await collect(provider.chat_stream(history, tools=[WEATHER]))
    assert final.content == "It is cold in Oslo today."
    second = sim.requests_for("gemini", "chat")[1]
    assert second.stream and "alt=sse" in second.path + "?" + "&".join(f"{k}={v}" for k, v in second.query.items())
    assert second.body["contents"][1]["role"] == "model"
    assert [_sorted(p) for p in second.body["contents"][2]["parts"]] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": "-5C"}}}]


async def test_thought_signatures_round_trip(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    parts = [{"text": "Plan", "thought": True},
             {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}, "thoughtSignature": "U0lHMQ=="},
             {"text": "", "thoughtSignature": "U0lHMg=="}]
    sim.replay({"provider": "gemini", "kind": "tools", "request": {"path": "/v1beta/models/m:generateContent"},
                "response": {"status": 200, "content_type": "application/json", "body": {
                    "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 2,
                                      "totalTokenCount": 10}}}})
    first = await provider.chat("Weather in Lima?", tools=[WEATHER], thinking=True)
    assert first.reasoning == "Plan"
    assert first.tool_calls[0].provider_data == {"gemini": {"thoughtSignature": "U0lHMQ=="}}
    history = [Message.user("Weather in Lima?"), first.to_message(), Message.tool(first.tool_calls[0].id or "", "warm")]
    await provider.chat(history, tools=[WEATHER])
    sent = sim.last_request("gemini").body
    assert sent["contents"][1]["parts"] == parts  # signatures (and the thought) go back exactly


async def test_embeddings_are_batched(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(options={"embedding_model": "gemini-embedding-001"})
    texts = [f"text {i}" for i in range(230)]
    result = await provider.embed(texts, dimensions=16, task_type="retrieval_document")
    assert len(result.embeddings) == 230 and result.dimensions == 16
    assert result.model == "gemini-embedding-001"
    batches = [r.body["requests"] for r in sim.requests_for("gemini", "embeddings")]
    assert [len(b) for b in batches] == [100, 100, 30]
    assert batches[2][-1] == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "text 229"}]},
                              "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 16}
    single = await provider.embed("one")
    assert len(single.embeddings) == 1
    with pytest.raises(ValidationError):
        await provider.embed([])


async def test_json_mode_count_tokens_and_health(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    answer = await provider.chat("Give me a name", json_schema=schema)
    assert json.loads(answer.content) == {"name": "simulated"}
    config = sim.last_request("gemini").body["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": schema}

    count = await provider.count_tokens([Message.system("sys"), Message.user("count these words")], tools=[WEATHER])
    assert count > 0
    counted = sim.requests_for("gemini", "count_tokens")[0].body
    assert set(counted["generateContentRequest"]) == {"model", "contents", "systemInstruction", "tools"}

    assert await provider.health_check() is True
    assert sim.requests_for("gemini", "model")  # GET models/{model}: no tokens spent
    sim.fault("gemini", Fault.model_not_found(), endpoint="model")
    assert await provider.health_check() is False


async def test_configuration_is_honoured(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(max_tokens=77, temperature=0.4, extra_headers={"x-team": "blue"},
                                   api_version="v1", timeout=9, max_connections=5, max_keepalive_connections=2,
                                   keepalive_expiry=7, extra_body={"safetySettings": []})
    await provider.chat("hi")
    request = sim.last_request("gemini")
    assert request.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert request.body["generationConfig"] == {"temperature": 0.4, "maxOutputTokens": 77}
    assert request.body["safetySettings"] == []
    assert request.header("x-team") == "blue"
    assert request.header("x-goog-api-key") != "AIzaSyTEST00000000000000000"  # masked by the simulator
    if provider.transport_name == "sdk":
        pool = provider._http._transport._pool
        assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (5, 2, 7)
    else:
        assert provider._native.settings == NativeSettings(timeout=9, connect_timeout=9, max_connections=5,
                                                           keepalive_expiry=7)
        assert provider._native.connector_limit == 5
        assert request.header("x-server-timeout") == "9"
    default = await make_provider()
    await default.chat("hi")
    assert sim.last_request("gemini").path.startswith("/v1beta/")


async def test_one_client_per_deployment(make_provider: Any) -> None:
    provider = await make_provider()
    client = provider._client
    for _ in range(3):
        await provider.chat("hi")
    assert provider._client is client


@pytest.mark.parametrize(("fault", "cls", "status"), [
    (Fault.rate_limited(retry_after=3), RateLimitError, 429),
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
    sim.fault("gemini", fault)
    with pytest.raises(cls) as info:
        if stream:
            await collect(provider.chat_stream("hi"))
        else:
            await provider.chat("hi")
    error = info.value
    assert (error.status_code, error.provider, error.model) == (status, "gemini", "gemini-2.5-flash")
    assert error.message and error.error_type
    if provider.transport_name == "sdk":  # the native transport reads the status itself: no SDK exception
        assert isinstance(error.__cause__, Exception)
    if status == 429:
        assert error.retry_after == 3.0 and error.retryable
    assert len(sim.requests_for("gemini", "chat")) == 1  # the SDK did not retry


async def test_timeouts_connection_failures_and_bad_json(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(timeout=5)
    sim.fault("gemini", Fault.slow(2))
    with pytest.raises(TimeoutError):
        await provider.chat("hi", timeout=0.2)
    sim.fault("gemini", Fault.connection_reset())
    with pytest.raises(NetworkError) as info:
        await provider.chat("hi")
    assert info.value.retryable
    sim.fault("gemini", Fault.malformed_json())
    with pytest.raises(ResponseParsingError):
        await provider.chat("hi")
    slow = await make_provider(timeout=0.3)
    sim.fault("gemini", Fault.slow(2))
    with pytest.raises(TimeoutError):
        await slow.chat("hi")  # the configured timeout applies too


async def test_stream_cut_mid_way_reports_what_arrived(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("gemini", Reply(text="one two three four five six seven eight nine ten eleven twelve thirteen"))
    for fault in (Fault.disconnect(after=2), Fault.truncated_stream(after=2)):
        sim.fault("gemini", fault)
        seen: list[str] = []
        with pytest.raises(StreamInterruptedError) as info:
            async for chunk in provider.chat_stream("hi"):
                seen.append(chunk.delta)
        assert seen and info.value.partial_content == "".join(seen)
    sim.fault("gemini", Fault.disconnect(after=0))
    with pytest.raises(NetworkError) as cut:
        await collect(provider.chat_stream("hi"))
    assert not isinstance(cut.value, StreamInterruptedError)


async def test_not_initialised_and_missing_key() -> None:
    provider = GeminiProvider()
    with pytest.raises(ConfigurationError, match="not initialised"):
        await provider.chat("hi")
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY"):
        await provider.initialize({"model": "gemini-x"})
    assert await provider.health_check() is False


# -- httpx2.MockTransport: what the simulator does not script --------------------------------------------


async def test_in_band_stream_error_and_blocked_prompt() -> None:
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}}]}
    error = {"error": {"code": 500, "message": "Internal error mid-stream", "status": "INTERNAL"}}
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
               "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}
    bodies = [
        f"data: {json.dumps(chunk)}\r\n\r\ndata: {json.dumps(error)}\r\n\r\n".encode(),
        f"data: {json.dumps(blocked)}\r\n\r\n".encode(),
        json.dumps(blocked).encode(),
    ]
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        kind = "text/event-stream" if len(calls) < 3 else "application/json"
        return httpx2.Response(200, headers={"content-type": kind}, content=bodies[len(calls) - 1])

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    provider = GeminiProvider(http_client=http)
    await provider.initialize({"api_key": "AIzaSyTEST00000000000000000", "base_url": "http://127.0.0.1:9"})
    deltas = []
    with pytest.raises(ProviderUnavailableError) as info:  # the in-band error, mapped by its own code
        async for piece in provider.chat_stream("hi"):
            deltas.append(piece.delta)
    assert deltas == ["Hi"]
    assert (info.value.status_code, info.value.error_type) == (500, "INTERNAL")
    _, final = await collect(provider.chat_stream("hi"))
    assert (final.finish_reason, final.metadata["block_reason"]) == ("content_filter", "PROHIBITED_CONTENT")
    response = await provider.chat("hi")
    assert (response.finish_reason, response.metadata["block_reason"]) == ("content_filter", "PROHIBITED_CONTENT")
    await provider.cleanup()
    assert not http.is_closed  # an injected client stays the caller's
    await http.aclose()


@pytest.mark.parametrize(("finish", "native", "ours"), [
    ("stop", "STOP", "stop"), ("length", "MAX_TOKENS", "length"), ("content_filter", "SAFETY", "content_filter"),
    ("RECITATION", "RECITATION", "content_filter"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_finish_reasons(sim: ProviderSimulator, make_provider: Any, finish: str, native: str, ours: str,
                              stream: bool) -> None:
    provider = await make_provider()
    sim.script("gemini", Reply(text="partial", finish_reason=finish))
    if stream:
        _, final = await collect(provider.chat_stream("hi"))
        got = (final.finish_reason, final.native_finish_reason)
    else:
        response = await provider.chat("hi")
        got = (response.finish_reason, response.native_finish_reason)
    assert got == (ours, native)


async def test_schema_mode_option_sends_json_schema_unchanged(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(options={"schema_mode": "json_schema"})
    recursive = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    await provider.chat("hi", tools=[{"name": "tree", "parameters": recursive}], json_schema=recursive)
    body = sim.last_request("gemini").body
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == recursive
    assert body["generationConfig"]["responseJsonSchema"] == recursive


async def test_a_caller_may_stop_a_stream_early(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("gemini", Reply(text="one two three four five six seven eight nine ten eleven twelve"))
    for _ in range(3):
        async for chunk in provider.chat_stream("hi"):
            if chunk.kind == "text":
                break
    assert (await provider.chat("again")).content


async def test_injected_client_without_the_request_layer_uses_the_public_api() -> None:
    class FakeModels:
        """Stands in for ``client.aio.models``: only public methods, as a future SDK might offer."""

        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        async def generate_content(self, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "fake"}]},
                                    "finishReason": "STOP"}], "modelVersion": "gemini-fake"}

            class Raw:
                headers = {"x-request-id": "r-fake"}

            Raw.body = json.dumps(body)  # type: ignore[attr-defined]

            class Response:
                sdk_http_response = Raw

            return Response

    class FakeClient:
        def __init__(self) -> None:
            self.aio = type("Aio", (), {"models": FakeModels()})()

    fake = FakeClient()
    provider = GeminiProvider(client=fake)
    await provider.initialize({"api_key": "AIzaSyTEST00000000000000000"})
    assert isinstance(provider._transport, PublicSdkTransport)
    response = await provider.chat([Message.system("sys"), Message.user("hi")], temperature=0.3)
    assert (response.content, response.model, response.request_id) == ("fake", "gemini-fake", "r-fake")
    call = fake.aio.models.calls[0]
    assert call["model"] == "models/gemini-2.5-flash"
    assert call["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert call["config"] == {"temperature": 0.3, "systemInstruction": {"parts": [{"text": "sys"}]},
                              "shouldReturnHttpResponse": True}
    await provider.cleanup()
