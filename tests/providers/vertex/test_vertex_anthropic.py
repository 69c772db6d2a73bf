"""Claude on Vertex AI (``vertex_anthropic``) end to end over real sockets to the simulator, on both transports.

The requests are the ones Anthropic's Vertex client sends (the model in the path, ``anthropic_version`` in the
body, a bearer token), answers and streams go through the Anthropic mapping, a refused token is dropped and
fetched again, and the manager falls back from Vertex AI to Anthropic's own API.
"""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import AuthenticationError, ConfigurationError
from spoon_llm.manager import LLMManager
from spoon_llm.providers.vertex import VertexAnthropicProvider
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.testing import ToolCall as ScriptedCall

TOKEN = "ya29.test-token-0001"
MODEL = "claude-sonnet-4-5@20250929"
ROOT = "/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/"


@pytest.fixture
async def built(sim: ProviderSimulator, transport: str) -> Any:
    """``await built(token_provider=..., **config)``: a provider closed after the test."""
    made: list[VertexAnthropicProvider] = []

    async def build(*, token_provider: Any = None, **config: Any) -> VertexAnthropicProvider:
        provider = VertexAnthropicProvider(token_provider=token_provider)
        settings = {"base_url": sim.vertex_base_url, "model": MODEL, "project": "test-project",
                    "vertex_location": "us-east5", "transport": transport, **config}
        if token_provider is None:
            settings.setdefault("vertex_access_token", TOKEN)
        await provider.initialize(settings)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.cleanup()


async def test_chat_posts_anthropic_bodies_to_raw_predict(built: Any, sim: ProviderSimulator) -> None:
    provider = await built()
    answer = await provider.chat([{"role": "user", "content": "Hello"}], max_tokens=64, temperature=0.2)
    assert answer.content == "Simulated reply to: Hello"
    assert answer.provider == "vertex_anthropic" and answer.usage is not None and answer.usage.output_tokens > 0
    request = sim.last_request("vertex_anthropic")
    assert request.path == ROOT + MODEL + ":rawPredict"
    assert request.header("authorization") == "Bearer ***0001"  # the simulator keeps a token's last 4 characters
    assert request.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in request.body
    assert request.body["max_tokens"] == 64 and request.body["temperature"] == 0.2
    assert request.body["messages"][0]["role"] == "user"


async def test_streams_use_stream_raw_predict(built: Any, sim: ProviderSimulator) -> None:
    provider = await built()
    chunks = [c async for c in provider.chat_stream([{"role": "user", "content": "Tell me"}], max_tokens=32)]
    assert "".join(c.delta for c in chunks) == "Simulated reply to: Tell me"
    assert chunks[-1].usage is not None and chunks[-1].finish_reason == "stop"
    request = sim.last_request("vertex_anthropic")
    assert request.path == ROOT + MODEL + ":streamRawPredict" and request.body["stream"] is True
    assert "model" not in request.body


async def test_tool_calls_come_back_through_the_anthropic_mapping(built: Any, sim: ProviderSimulator) -> None:
    provider = await built()
    sim.script("vertex_anthropic", Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})]))
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    answer = await provider.chat([{"role": "user", "content": "Weather in Paris?"}], tools=tools, max_tokens=64)
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert answer.tool_calls[0].id.startswith("toolu_")
    assert sim.last_request("vertex_anthropic").body["tools"][0]["input_schema"]["required"] == ["city"]


async def test_count_tokens_and_health_spend_nothing(built: Any, sim: ProviderSimulator) -> None:
    provider = await built()
    assert await provider.count_tokens([{"role": "user", "content": "How many tokens is this?"}]) > 0
    request = sim.last_request("vertex_anthropic")
    assert request.path == ROOT + "count-tokens:rawPredict" and request.body["model"] == MODEL
    assert await provider.health_check()
    assert sim.requests_for("vertex_anthropic", endpoint="chat") == []
    assert await provider.list_models() == [MODEL]


async def test_a_refused_token_is_dropped_and_fetched_again(built: Any, sim: ProviderSimulator) -> None:
    issued: list[str] = []

    def tokens() -> str:
        issued.append(f"ya29.token-{len(issued):04d}")
        return issued[-1]

    provider = await built(token_provider=tokens)
    sim.fault("vertex_anthropic", Fault.unauthorized(), times=1)
    with pytest.raises(AuthenticationError):
        await provider.chat([{"role": "user", "content": "Hello"}], max_tokens=8)
    await provider.chat([{"role": "user", "content": "Hello"}], max_tokens=8)
    assert issued == ["ya29.token-0000", "ya29.token-0001"]
    bearers = [r.header("authorization") for r in sim.requests_for("vertex_anthropic")]
    assert bearers == ["Bearer ***0000", "Bearer ***0001"]


async def test_a_request_without_a_token_is_refused_by_vertex(sim: ProviderSimulator) -> None:
    import httpx2

    async with httpx2.AsyncClient() as client:
        reply = await client.post(sim.vertex_base_url.rstrip("/") + ROOT + MODEL + ":rawPredict",
                                  json={"anthropic_version": "vertex-2023-10-16", "max_tokens": 8,
                                        "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 401


@pytest.mark.parametrize("transport", ["native"])
async def test_an_api_key_is_refused_with_the_fix(sim: ProviderSimulator, transport: str) -> None:
    provider = VertexAnthropicProvider()
    with pytest.raises(ConfigurationError) as info:
        await provider.initialize({"base_url": sim.vertex_base_url, "project": "p", "api_key": "AIza-key",
                                   "transport": transport})
    assert "not an API key" in str(info.value) and info.value.key == "providers.vertex_anthropic.api_key"
    assert "AIza-key" not in str(info.value)


async def test_vertex_falls_back_to_anthropic(sim: ProviderSimulator, transport: str) -> None:
    config = ConfigurationManager({"providers": {
        "vertex_anthropic": {"base_url": sim.vertex_base_url, "model": MODEL, "project": "test-project",
                             "vertex_location": "us-east5", "vertex_access_token": TOKEN, "transport": transport},
        "anthropic": {"api_key": "sk-ant-test", "base_url": sim.anthropic_base_url, "model": "claude-sonnet-4-5"}},
        "fallback_chain": ["vertex_anthropic", "anthropic"]}, env={})
    sim.fault("vertex_anthropic", Fault.overloaded(), times=None)
    async with LLMManager(config, middleware=[]) as manager:
        answer = await manager.chat("Hello", max_tokens=16)
    assert answer.provider == "anthropic" and answer.fallback_path[0] == "vertex_anthropic"
    assert answer.fallback_path[-1] == "anthropic"


async def test_answers_are_priced_as_anthropic_models(sim: ProviderSimulator, transport: str) -> None:
    config = ConfigurationManager({"providers": {"vertex_anthropic": {
        "base_url": sim.vertex_base_url, "model": MODEL, "project": "test-project", "vertex_location": "us-east5",
        "vertex_access_token": TOKEN, "transport": transport}}}, env={})
    async with LLMManager(config) as manager:
        answer = await manager.chat("Hello", max_tokens=16)
    assert answer.cost is not None and not answer.cost.unpriced and answer.cost.total_cost > 0
    assert "claude-sonnet-4-5" in answer.cost.source
