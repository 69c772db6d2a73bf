"""BedrockProvider against the simulator: both APIs, a two-turn tool conversation, errors, the manager.

Converse and InvokeModel, JSON and event streams, the request bodies the provider builds, reasoning blocks
travelling back with their signatures, each Bedrock error type mapped to our tree with its retryability, throttling
retried by :class:`LLMManager`, Bedrock -> Anthropic fallback, free token counting and health checks, and the
arguments Converse cannot express refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from _bedrock_helpers import ACCESS_KEY, MODEL, REGION, SECRET_KEY

from spoon_llm import ConfigurationManager
from spoon_llm.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceUnavailableError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
)
from spoon_llm.manager import LLMManager
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.testing import ToolCall as ScriptedCall
from spoon_llm.types import ImagePart, LLMResponse, Message, TextPart, ToolSpec

WEATHER = ToolSpec(name="get_weather", description="Weather in a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


async def _ask(provider: Any, messages: Any, stream: bool, **kwargs: Any) -> LLMResponse:
    if stream:
        return await collect_stream(provider.chat_stream(messages, **kwargs))
    response: LLMResponse = await provider.chat(messages, **kwargs)
    return response


def _sent(sim: ProviderSimulator) -> list[Any]:
    return sim.requests_for("bedrock", "chat")


@pytest.mark.parametrize("stream", [False, True])
async def test_converse_request_and_answer(sim: ProviderSimulator, make_provider: Any, stream: bool) -> None:
    provider = await make_provider(max_tokens=300, temperature=0.2)
    image = ImagePart(data="aGVsbG8=", media_type="image/jpeg", cache_control={"type": "ephemeral"})
    messages = [Message.system("Be brief."), Message(role="user", content=[TextPart(text="What is this?"), image])]
    response = await _ask(provider, messages, stream, stop=["END"], top_p=0.9, metadata={"team": "search", "n": 1})
    assert response.content == "Simulated reply to: What is this?"
    assert (response.finish_reason, response.native_finish_reason) == ("stop", "end_turn")
    assert response.provider == "bedrock" and response.model == MODEL
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.request_id
    [request] = _sent(sim)
    assert request.path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/" + (
        "converse-stream" if stream else "converse")
    assert request.body == {
        "messages": [{"role": "user", "content": [
            {"text": "What is this?"}, {"image": {"format": "jpeg", "source": {"bytes": "aGVsbG8="}}},
            {"cachePoint": {"type": "default"}}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "requestMetadata": {"team": "search", "n": "1"},
    }
    # Extended thinking rejects a temperature: the configured default then stays out (an explicit one goes).
    await _ask(provider, "think", stream, thinking=2048)
    assert "temperature" not in _sent(sim)[1].body["inferenceConfig"]
    await _ask(provider, "think", stream, thinking=2048, temperature=1)
    assert _sent(sim)[2].body["inferenceConfig"]["temperature"] == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_two_turn_tool_conversation_with_reasoning(sim: ProviderSimulator, make_provider: Any,
                                                         stream: bool) -> None:
    provider = await make_provider()
    sim.script("bedrock", Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"}, id="tooluse_1")],
                                reasoning="The user wants weather."), times=1)
    first = await _ask(provider, "Weather in Paris?", stream, tools=[WEATHER], tool_choice="auto", thinking=1024)
    assert first.finish_reason == "tool_calls" and first.native_finish_reason == "tool_use"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("tooluse_1", "get_weather",
                                                                       {"city": "Paris"})]
    assert first.reasoning == "The user wants weather."
    raw = first.metadata["provider_data"]["bedrock"]["content"]
    signature = raw[0]["reasoningContent"]["reasoningText"]["signature"]
    assert signature.endswith("SimulatedSignature==")

    history = [Message.user("Weather in Paris?"), first.to_message(),
               Message(role="tool", tool_call_id="tooluse_1", content='{"temp": 21}')]
    second = await _ask(provider, history, stream, tools=[WEATHER], thinking=1024)
    assert second.content.startswith("Simulated reply to:")
    body = _sent(sim)[1].body
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "The user wants weather.", "signature": signature}}},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": '{"temp": 21}'}], "status": "success"}}]}
    assert body["toolConfig"]["tools"] == [{"toolSpec": {
        "name": "get_weather", "description": "Weather in a city", "inputSchema": {"json": WEATHER.parameters}}}]
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}


@pytest.mark.parametrize("stream", [False, True])
async def test_invoke_model_with_anthropic_bodies(sim: ProviderSimulator, make_provider: Any, stream: bool) -> None:
    provider = await make_provider(bedrock_api="invoke")
    response = await _ask(provider, [Message.system("Be brief."), Message.user("Hi there")], stream,
                          max_tokens=64, tools=[WEATHER])
    assert response.content == "Simulated reply to: Hi there"
    assert response.native_finish_reason == "end_turn" and response.provider == "bedrock"
    assert response.model == MODEL
    [request] = _sent(sim)
    assert request.path.endswith("/invoke-with-response-stream" if stream else "/invoke")
    assert request.body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in request.body and "stream" not in request.body
    # Like botocore: only InvokeModel names the answer's type in Accept (aiohttp's default otherwise).
    assert request.header("accept") == ("*/*" if stream else "application/json")
    assert request.body["system"] == "Be brief." and request.body["max_tokens"] == 64
    assert request.body["tools"][0]["input_schema"] == WEATHER.parameters
    # The per-call switch goes the other way too.
    converse = await provider.chat("Hi", api="converse")
    assert converse.content == "Simulated reply to: Hi" and _sent(sim)[1].path.endswith("/converse")


@pytest.mark.parametrize(("fault", "error_class", "error_type", "retryable"), [
    (Fault.error(400), InvalidRequestError, "ValidationException", False),
    (Fault(status=400, context_limit=10), TokenLimitError, "ValidationException", False),
    (Fault.error(400, "Quota reached", error_type="ServiceQuotaExceededException"), RateLimitError,
     "ServiceQuotaExceededException", False),
    (Fault.error(403), PermissionDeniedError, "AccessDeniedException", False),
    (Fault.error(403, error_type="ExpiredTokenException"), AuthenticationError, "ExpiredTokenException", False),
    (Fault.error(404), ModelNotFoundError, "ResourceNotFoundException", False),
    (Fault.error(408), TimeoutError, "ModelTimeoutException", True),
    (Fault.error(424), ProviderUnavailableError, "ModelErrorException", False),
    (Fault.rate_limited(3), RateLimitError, "ThrottlingException", True),
    (Fault.error(429, error_type="ModelNotReadyException"), ServiceUnavailableError, "ModelNotReadyException",
     True),
    (Fault.error(500), ProviderUnavailableError, "InternalServerException", True),
    (Fault.error(503), ServiceUnavailableError, "ServiceUnavailableException", True),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_error_types_map_to_our_tree(sim: ProviderSimulator, make_provider: Any, fault: Fault,
                                           error_class: type[ProviderError], error_type: str, retryable: bool,
                                           stream: bool) -> None:
    provider = await make_provider()
    sim.fault("bedrock", fault)
    with pytest.raises(error_class) as info:
        await _ask(provider, "hello", stream)
    error = info.value
    assert type(error) is error_class
    assert (error.status_code, error.error_type, error.retryable) == (fault.status, error_type, retryable)
    assert error.request_id and error.provider == "bedrock"
    if fault.retry_after is not None:
        assert error.retry_after == fault.retry_after


def _manager(sim: ProviderSimulator, **settings: Any) -> LLMManager:
    return LLMManager(ConfigurationManager({
        "providers": {
            "bedrock": {"base_url": sim.base_url, "aws_region": REGION, "aws_access_key_id": ACCESS_KEY,
                        "aws_secret_access_key": SECRET_KEY, "model": MODEL},
            "claude": {"type": "anthropic", "api_key": "sk-ant-test-0000000000", "base_url": sim.anthropic_base_url,
                       "model": "claude-sonnet-4-5"},
        },
        **settings,
    }, env={}))


@pytest.mark.parametrize("stream", [False, True])
async def test_throttling_is_retried_by_the_manager(sim: ProviderSimulator, stream: bool) -> None:
    manager = _manager(sim, default_provider="bedrock",
                       retry={"max_retries": 2, "initial_backoff": 0.01, "max_backoff": 0.05})
    try:
        sim.fault("bedrock", Fault.rate_limited(None), times=1)
        if stream:
            response = await collect_stream(manager.chat_stream("hello", provider="bedrock"))
        else:
            response = await manager.chat("hello", provider="bedrock")
        assert response.content == "Simulated reply to: hello"
        assert len(_sent(sim)) == 2
        if not stream:
            assert [a.error_type for a in response.attempts] == ["RateLimitError", None]
    finally:
        await manager.cleanup()


async def test_fallback_from_bedrock_to_anthropic_through_the_manager(sim: ProviderSimulator) -> None:
    manager = _manager(sim, fallback_chain=["bedrock", "claude"], retry={"max_retries": 0})
    try:
        sim.fault("bedrock", Fault.error(503), times=None)
        response = await manager.chat("hello", tools=[WEATHER])
        assert response.provider == "anthropic"
        assert response.content == "Simulated reply to: hello"
        assert response.fallback_path == ["bedrock", "claude"]
        assert len(_sent(sim)) == 1 and len(sim.requests_for("anthropic")) == 1
    finally:
        await manager.cleanup()


async def test_token_counting_and_health_checks_are_free(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    assert await provider.count_tokens("a fairly short sentence to count", tools=[WEATHER]) > 0
    assert await provider.health_check()
    requests = sim.requests_for("bedrock")
    assert {r.endpoint for r in requests} == {"count_tokens"}
    assert requests[0].path.endswith("/count-tokens")
    assert set(requests[0].body["input"]["converse"]) == {"messages", "toolConfig"}
    sim.fault("bedrock", Fault.error(403))
    assert not await provider.health_check()
    sim.fault("bedrock", Fault.error(400, "The provided model identifier is invalid."))
    assert not await provider.health_check()
    sim.fault("bedrock", Fault.error(400, "This model doesn't support token counting."))
    assert await provider.health_check()


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"logit_bias_typo": 1}, "unknown argument"),
    ({"tools": [WEATHER], "tool_choice": "none"}, "tool_choice='none'"),
    ({"tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"json": True}, "json_schema"),
    ({"api": "mantle"}, "converse"),
])
async def test_what_converse_cannot_express_is_refused(sim: ProviderSimulator, make_provider: Any,
                                                       kwargs: dict[str, Any], words: str) -> None:
    provider = await make_provider()
    with pytest.raises(ValidationError) as info:
        await provider.chat("hi", **kwargs)
    assert words in str(info.value)
    assert not sim.requests_for("bedrock")


async def test_images_by_web_url_are_refused(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    message = Message(role="user", content=[ImagePart(url="https://example.com/cat.png")])
    with pytest.raises(ValidationError, match="s3://"):
        await provider.chat([message])
    structured = await provider.chat("Paris?", json_schema={"type": "object", "title": "City",
                                                             "properties": {"name": {"type": "string"}}})
    assert json.loads(structured.content) == {"name": "simulated"}
    fmt = _sent(sim)[0].body["outputConfig"]["textFormat"]
    assert fmt["structure"]["jsonSchema"]["name"] == "City"


def test_import_spoon_llm_loads_neither_the_provider_nor_botocore() -> None:
    code = ("import sys, spoon_llm; "
            "print([m for m in sys.modules if m.startswith(('botocore', 'spoon_llm.providers.bedrock'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("model", ["amazon.nova-lite-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"])
def test_answers_are_priced_from_the_aws_price_records(model: str) -> None:
    pytest.importorskip("genai_prices")
    from spoon_llm.pricing import PriceBook
    from spoon_llm.types import TokenUsage

    cost = PriceBook().cost(TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000), model,
                            provider_type="bedrock")
    assert not cost.unpriced and cost.total_cost > 0
    assert cost.source is not None and "genai-prices" in cost.source


@pytest.mark.parametrize("api", ["converse", "invoke"])
async def test_a_stream_left_early_gives_its_connection_back(sim: ProviderSimulator, make_provider: Any,
                                                             api: str) -> None:
    # One connection in the pool: a stream that kept it would make every later request wait forever.
    provider = await make_provider(max_connections=1, bedrock_api=api)

    async def leave_early() -> None:
        async for chunk in provider.chat_stream("tell me a long story about many things"):
            if chunk.kind == "text":
                break

    async def rounds() -> None:
        for _ in range(5):
            stream = provider.chat_stream("one two three four five six")
            await leave_early()
            await stream.aclose()  # never started: closing it must not need the connection
            assert (await provider.chat("hi")).content == "Simulated reply to: hi"

    await asyncio.wait_for(rounds(), timeout=60)


async def test_a_throttling_frame_before_any_text_is_retried_by_the_manager(sim: ProviderSimulator) -> None:
    manager = _manager(sim, default_provider="bedrock",
                       retry={"max_retries": 2, "initial_backoff": 0.01, "max_backoff": 0.05})
    stream_type = "application/vnd.amazon.eventstream"
    sim.replay({"provider": "bedrock", "kind": "chat_stream",
                "request": {"method": "POST", "path": "/model/m/converse-stream", "body": {}},
                "response": {"status": 200, "content_type": stream_type, "headers": {"content-type": stream_type},
                             "eventstream": [{"event": "messageStart", "data": '{"role":"assistant"}'},
                                             {"event": "throttlingException", "message_type": "exception",
                                              "data": '{"message":"Too many tokens, please wait."}'}]}})
    try:
        response = await collect_stream(manager.chat_stream("hello", provider="bedrock"))
        assert response.content == "Simulated reply to: hello"
        assert len(_sent(sim)) == 2
    finally:
        await manager.cleanup()
