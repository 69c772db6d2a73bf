"""Real sockets: the providers against the simulator on 127.0.0.1, on every transport, faults included.

``native`` is our own aiohttp client; ``sdk`` and ``aiohttp`` are the openai SDK on httpx2 and on its aiohttp
client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _openai_compat_helpers import DEEPSEEK_KEY, OPENAI_KEY, OPENROUTER_KEY

from spoon_llm import errors as ours
from spoon_llm.providers.deepseek import DeepSeekProvider
from spoon_llm.providers.ollama import OllamaProvider
from spoon_llm.providers.openai import OpenAIProvider
from spoon_llm.providers.openrouter import OpenRouterProvider
from spoon_llm.providers.vllm import VLLMProvider
from spoon_llm.testing import ECHO_PREFIX, Fault, ProviderSimulator, Reply, ToolCall, Usage
from spoon_llm.types import ImagePart, Message, TextPart, ToolSpec

WEATHER = ToolSpec(name="get_weather", description="Weather for a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture(params=["native", "sdk", "aiohttp"])
async def openai(request: pytest.FixtureRequest, sim: ProviderSimulator) -> AsyncIterator[OpenAIProvider]:
    """``OpenAIProvider`` on the simulator, once per transport."""
    provider = OpenAIProvider()
    await provider.initialize({"api_key": OPENAI_KEY, "base_url": sim.openai_base_url, "model": "gpt-4o-mini",
                               "transport": request.param, "timeout": 5})
    yield provider
    await provider.cleanup()


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_chat(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    response = await openai.chat([Message.system("be brief"), {"role": "user", "content": "Hello there"}],
                                 max_tokens=100, temperature=0.2, seed=7)
    assert response.content == ECHO_PREFIX + "Hello there"
    assert response.finish_reason == "stop" and response.provider == "openai"
    assert response.usage is not None and response.usage.input_tokens > 0
    assert response.request_id and response.duration > 0
    sent = sim.last_request("openai")
    assert sent.header("authorization") == "Bearer ***0001"
    assert sent.body["max_tokens"] == 100 and sent.body["seed"] == 7


async def test_stream_text_usage_and_finish(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="one two three", chunks=["one", " two", " three"],
                               usage=Usage(input_tokens=11, output_tokens=3, cached_tokens=4, reasoning_tokens=1)))
    chunks = await collect(openai.chat_stream("count"))
    assert [c.delta for c in chunks if c.kind == "text"] == ["one", " two", " three"]
    final = chunks[-1]
    assert final.kind == "final" and final.content == "one two three" and final.finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cached_input_tokens,
            final.usage.reasoning_tokens) == (11, 3, 4, 1)
    assert sim.last_request("openai").body["stream_options"] == {"include_usage": True}


async def test_tools_parallel_calls_and_results_next_turn(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1"),
                                           ToolCall("get_weather", {"city": "Rome"}, id="call_2")]), times=1)
    messages: list[Any] = [Message.user("Weather in Paris and Rome?")]
    response = await openai.chat_with_tools(messages, [WEATHER], tool_choice="auto", parallel_tool_calls=True)
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"}), ("call_2", "get_weather", {"city": "Rome"})]
    sent = sim.last_request("openai").body
    assert sent["tools"] == [WEATHER.to_openai()] and sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is True
    messages += [response.to_message(), Message.tool("call_1", {"temp": 21}), Message.tool("call_2", "18C")]
    final = await openai.chat_with_tools(messages, [WEATHER])
    assert final.content.startswith(ECHO_PREFIX)
    turns = sim.last_request("openai").body["messages"]
    assert turns[1]["tool_calls"][1]["id"] == "call_2"
    assert turns[2:] == [{"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
                         {"role": "tool", "content": "18C", "tool_call_id": "call_2"}]


async def test_forcing_one_function_streams_a_complete_call(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    chunks = await collect(openai.chat_stream("weather?", tools=[WEATHER], tool_choice="get_weather"))
    assert sim.last_request("openai").body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert any(c.kind == "tool" for c in chunks)
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("get_weather", {"city": "simulated"})]


async def test_json_mode_and_json_schema(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    response = await openai.chat("give me json", json=True)
    assert json.loads(response.content) == {"reply": ECHO_PREFIX + "give me json"}
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
              "required": ["city", "n"], "additionalProperties": False}
    response = await openai.chat("structured", json_schema={"name": "place", "schema": schema, "strict": True})
    assert json.loads(response.content) == {"city": "simulated", "n": 0}
    assert sim.last_request("openai").body["response_format"]["json_schema"]["strict"] is True


async def test_images_in_user_messages(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    await openai.chat([Message.user([TextPart(text="What is this?"),
                                     ImagePart(data="iVBORw0KGgo=", media_type="image/png", detail="high")])])
    part = sim.last_request("openai").body["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}}


async def test_reasoning_model_parameter_rules(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    await openai.chat("think", model="o3-mini", max_tokens=64, temperature=0.7, reasoning_effort="low")
    sent = sim.last_request("openai").body
    assert sent["max_completion_tokens"] == 64 and "max_tokens" not in sent and "temperature" not in sent
    assert sent["reasoning_effort"] == "low"


async def test_embeddings_batched_in_order_with_dimensions(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    texts = [f"text {i}" for i in range(5)]
    response = await openai.embed(texts, dimensions=8, batch_size=2)
    assert len(response.embeddings) == 5 and response.dimensions == 8
    assert response.metadata["batches"] == 3
    sent = sim.requests_for("openai", "embeddings")
    assert sorted(len(r.body["input"]) for r in sent) == [1, 2, 2]
    assert all(r.body["encoding_format"] == "base64" and r.body["dimensions"] == 8 for r in sent)
    single = await openai.embed("text 3", dimensions=8)
    assert single.embeddings == [response.embeddings[3]]  # deterministic vectors, same order
    assert response.usage is not None and response.usage.input_tokens > 0
    floats = await openai.embed(["x"], encoding_format="float", model="text-embedding-3-large")
    assert floats.dimensions == 3072


async def test_completion_legacy_endpoint_or_chat(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    legacy = await openai.completion("Say hi", model="gpt-3.5-turbo-instruct", max_tokens=20)
    assert sim.last_request("openai").endpoint == "completion" and legacy.content
    assert legacy.metadata["endpoint"] == "completions"
    streamed = await collect(openai.completion_stream("Say hi", model="davinci-002"))
    assert "".join(c.delta for c in streamed) == streamed[-1].content and streamed[-1].kind == "final"
    chat = await openai.completion("Say hi")  # gpt-4o-mini has no legacy endpoint
    assert sim.last_request("openai").endpoint == "chat" and chat.content == ECHO_PREFIX + "Say hi"


async def test_health_check_spends_no_tokens(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    assert await openai.health_check() is True
    assert sim.last_request("openai").endpoint == "models"
    sim.fault("openai", Fault.unauthorized(), endpoint="models")
    assert await openai.health_check() is False
    assert isinstance(openai.last_health_error, ours.AuthenticationError)


# -- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault.unauthorized(), ours.AuthenticationError),
    (Fault.forbidden(), ours.PermissionDeniedError),
    (Fault.model_not_found(), ours.ModelNotFoundError),
    (Fault.context_length_exceeded(1000), ours.TokenLimitError),
    (Fault.error(400, "Output blocked by content filtering policy", code="content_filter"), ours.ContentFilterError),
    (Fault.server_error(), ours.ProviderUnavailableError),
    (Fault.unavailable(retry_after=3), ours.ServiceUnavailableError),
])
async def test_status_faults(openai: OpenAIProvider, sim: ProviderSimulator, fault: Fault,
                             expected: type[ours.ProviderError]) -> None:
    sim.fault("openai", fault, times=2)
    with pytest.raises(expected) as info:
        await openai.chat("hi")
    error = info.value
    assert type(error) is expected and error.status_code == fault.status
    assert error.provider == "openai" and error.model == "gpt-4o-mini" and error.request_id
    assert error.message and not error.message.startswith("Error code")
    with pytest.raises(expected):
        await collect(openai.chat_stream("hi"))


async def test_rate_limit_carries_retry_after(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.rate_limited(retry_after=2.5))
    with pytest.raises(ours.RateLimitError) as info:
        await openai.chat("hi")
    assert info.value.retry_after == 2.5 and info.value.retryable and info.value.status_code == 429
    assert info.value.error_code == "rate_limit_exceeded" and "retry-after" in info.value.headers


async def test_connection_reset_and_timeout_are_retryable(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.connection_reset())
    with pytest.raises(ours.NetworkError) as reset:
        await openai.chat("hi")
    assert reset.value.retryable
    sim.fault("openai", Fault.slow(2.0))
    with pytest.raises(ours.TimeoutError) as slow:
        await openai.chat("hi", timeout=0.2)
    assert slow.value.retryable


async def test_malformed_json_is_a_parsing_error(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.malformed_json())
    with pytest.raises(ours.ResponseParsingError):
        await openai.chat("hi")


@pytest.mark.parametrize("fault", [Fault.disconnect(after=3), Fault.truncated_stream(after=3)])
async def test_a_broken_stream_after_content_is_interrupted(openai: OpenAIProvider, sim: ProviderSimulator,
                                                            fault: Fault) -> None:
    sim.script("openai", Reply(text="a b c d e f g h", chunks=list("abcdefgh")))
    sim.fault("openai", fault)
    seen: list[str] = []
    with pytest.raises(ours.StreamInterruptedError) as info:
        async for chunk in openai.chat_stream("hi"):
            seen.append(chunk.delta)
    assert seen and info.value.partial_content == "".join(seen)


async def test_slow_streams_still_arrive_whole(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.slow_stream(0.01))
    chunks = await collect(openai.chat_stream("slowly"))
    assert chunks[-1].content == ECHO_PREFIX + "slowly"


# -- the other providers ---------------------------------------------------------------------------------------


async def test_openrouter(sim: ProviderSimulator) -> None:
    provider = OpenRouterProvider()
    await provider.initialize({"api_key": OPENROUTER_KEY, "base_url": sim.openrouter_base_url,
                               "http_referer": "https://app.example", "x_title": "Spoon"})
    response = await provider.chat("hi", model="anthropic/claude-3.5-sonnet", provider={"order": ["anthropic"]})
    sent = sim.last_request("openrouter")
    assert sent.path == "/api/v1/chat/completions" and sent.body["model"] == "anthropic/claude-3.5-sonnet"
    assert sent.body["provider"] == {"order": ["anthropic"]}
    assert sent.header("http-referer") == "https://app.example" and sent.header("x-title") == "Spoon"
    assert response.content.startswith(ECHO_PREFIX)
    chunks = await collect(provider.chat_stream("hi", model="openai/o3", max_tokens=5))
    assert chunks[-1].kind == "final"
    assert sim.last_request("openrouter").body["max_tokens"] == 5  # OpenRouter translates it upstream
    with pytest.raises(ours.ValidationError):
        await provider.embed("x")
    await provider.cleanup()


async def test_deepseek_reasoning(sim: ProviderSimulator) -> None:
    provider = DeepSeekProvider()
    await provider.initialize({"api_key": DEEPSEEK_KEY, "base_url": sim.deepseek_base_url})
    sim.script("deepseek", Reply(text="4", reasoning="2 plus 2"), times=2)
    response = await provider.chat("2+2?", model="deepseek-reasoner")
    assert response.reasoning == "2 plus 2" and response.content == "4"
    assert sim.last_request("deepseek").path == "/chat/completions"
    chunks = await collect(provider.chat_stream("2+2?", model="deepseek-reasoner"))
    assert "".join(c.reasoning_delta for c in chunks) == "2 plus 2"
    await provider.chat([Message.user("2+2?"), response.to_message(), Message.user("and 3+3?")])
    assert sim.last_request("deepseek").body["messages"][1]["reasoning_content"] == "2 plus 2"
    await provider.cleanup()


@pytest.mark.parametrize("transport", ["native", "sdk", "aiohttp"])
async def test_vllm_health_cost_and_model_discovery(sim: ProviderSimulator, monkeypatch: pytest.MonkeyPatch,
                                                    transport: str) -> None:
    monkeypatch.setenv("VLLM_ENDPOINT", sim.base_url)  # a bare host:port gets /v1
    monkeypatch.setenv("VLLM_HOURLY_RATE", "3.6")
    provider = VLLMProvider()
    await provider.initialize({"transport": transport})
    assert provider.base_url == sim.openai_base_url
    assert await provider.health_check() is True
    assert sim.last_request().path == "/health"
    response = await provider.chat("hi")
    assert response.model and sim.last_request("openai").body["model"] == response.model
    assert response.cost is not None and response.cost.source == "hourly rate"
    assert response.cost.total_cost == pytest.approx(3.6 * response.duration / 3600)
    assert "authorization" not in sim.last_request("openai").headers
    sim.fault("openai", Fault.server_error(), endpoint="health")
    assert await provider.health_check() is False
    await provider.cleanup()


async def test_vllm_and_ollama_legacy_completions_when_configured(sim: ProviderSimulator) -> None:
    for cls in (VLLMProvider, OllamaProvider):
        provider = cls()
        await provider.initialize({"base_url": sim.openai_base_url, "model": "m",
                                   "options": {"legacy_completions": True}})
        await provider.completion("Once upon")
        assert sim.last_request("openai").endpoint == "completion"
        await provider.cleanup()


async def test_abandoning_a_stream_releases_its_connection(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="a b c d", chunks=["a", " b", " c", " d"]))
    stream = openai.chat_stream("hi")
    async for chunk in stream:
        assert chunk.delta == "a"
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert (await openai.chat("again")).content == "a b c d"


async def test_one_client_serves_many_concurrent_requests(openai: OpenAIProvider, sim: ProviderSimulator) -> None:
    import asyncio

    client = openai._client
    answers = await asyncio.gather(*(openai.chat(f"q{i}") for i in range(40)))
    assert [a.content for a in answers] == [ECHO_PREFIX + f"q{i}" for i in range(40)]
    assert openai._client is client and sim.request_count == 40
