"""OpenAIResponsesProvider against the simulator's ``/v1/responses``, on both transports (real sockets).

A two-turn tool-calling conversation, reasoning items travelling back on the next turn, request options
mapped onto the Responses API's fields, finish reasons from ``status``, errors (HTTP, in-band stream events,
``response.failed``, cut streams) and a cross-vendor fallback through :class:`LLMManager`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import (
    NetworkError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
    ValidationError,
)
from spoon_llm.manager import LLMManager
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.testing import ToolCall as ScriptedCall
from spoon_llm.types import LLMResponse, Message, ToolSpec

API_KEY = "sk-proj-responses-test-0000000000"  # what conftest's make_provider configures
WEATHER = ToolSpec(name="get_weather", description="Weather in a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


async def _ask(provider: Any, messages: Any, stream: bool, **kwargs: Any) -> LLMResponse:
    if stream:
        return await collect_stream(provider.chat_stream(messages, **kwargs))
    response: LLMResponse = await provider.chat(messages, **kwargs)
    return response


def _sent(sim: ProviderSimulator) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests_for("openai_responses", "chat")]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_tool_calling_conversation_over_two_turns(sim: ProviderSimulator, make_provider: Any,
                                                          stream: bool) -> None:
    provider = await make_provider()
    sim.script("openai_responses", Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"}, id="call_1")]),
               times=1)
    sim.script("openai_responses", Reply(text="It is sunny in Paris."), times=1)
    messages: list[Any] = [Message.system("Be brief."), Message.user("Weather in Paris?")]

    first = await _ask(provider, messages, stream, tools=[WEATHER], tool_choice="auto")
    assert first.finish_reason == "tool_calls" and first.native_finish_reason == "completed"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("call_1", "get_weather", {"city": "Paris"})]
    assert "provider_data" not in first.metadata  # a plain call is rebuilt from our fields

    messages += [first.to_message(), Message.tool("call_1", {"sky": "sunny"})]
    second = await _ask(provider, messages, stream, tools=[WEATHER])
    assert second.content == "It is sunny in Paris."
    assert second.finish_reason == "stop"
    assert second.usage is not None and second.usage.input_tokens > 0

    bodies = _sent(sim)
    assert bodies[0]["tools"] == [{"type": "function", "name": "get_weather", "description": "Weather in a city",
                                   "parameters": WEATHER.parameters}]
    assert bodies[0]["tool_choice"] == "auto"
    assert bodies[1]["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"sky": "sunny"}'},
    ]
    assert all(b.get("stream", False) is stream for b in bodies)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_reasoning_items_travel_back_verbatim_on_the_next_turn(sim: ProviderSimulator, make_provider: Any,
                                                                     stream: bool) -> None:
    provider = await make_provider(model="gpt-5-mini")
    sim.script("openai_responses", Reply(text="4", reasoning="Two plus two is four."), times=1)
    first = await _ask(provider, "2+2?", stream, reasoning={"summary": "auto"}, reasoning_effort="low")
    assert first.reasoning == "Two plus two is four."
    items = first.metadata["provider_data"]["openai_responses"]["items"]
    assert [i["type"] for i in items] == ["reasoning", "message"]

    await _ask(provider, [Message.user("2+2?"), first.to_message(), Message.user("and 3+3?")], stream)
    bodies = _sent(sim)
    assert bodies[0]["reasoning"] == {"summary": "auto", "effort": "low"}
    assert bodies[1]["input"] == [{"role": "user", "content": "2+2?"}, *items, {"role": "user", "content": "and 3+3?"}]


async def test_call_options_map_onto_the_responses_fields(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(max_tokens=300, temperature=0.2)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response = await provider.chat(
        [Message.user([{"type": "text", "text": "Describe"}, {"type": "image", "url": "https://x.test/cat.png"},
                       {"type": "document", "data": "JVBERi0=", "filename": "a.pdf"}])],
        instructions="Answer in JSON.", response_format={"type": "json_schema", "json_schema": {
            "name": "Answer", "schema": schema, "strict": True}},
        tools=[{"type": "web_search"}], tool_choice="required", store=False, include=["reasoning.encrypted_content"],
        extra_body={"truncation": "auto"})
    assert json.loads(response.content) == {"answer": "simulated"}
    body = _sent(sim)[0]
    assert body["input"] == [{"role": "user", "content": [
        {"type": "input_text", "text": "Describe"},
        {"type": "input_image", "image_url": "https://x.test/cat.png"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    ]}]
    assert body["text"] == {"format": {"type": "json_schema", "name": "Answer", "schema": schema, "strict": True}}
    assert body["max_output_tokens"] == 300 and body["temperature"] == 0.2
    assert body["instructions"] == "Answer in JSON." and body["tools"] == [{"type": "web_search"}]
    assert body["tool_choice"] == "required" and body["store"] is False and body["truncation"] == "auto"
    assert body["include"] == ["reasoning.encrypted_content"]


async def test_reasoning_models_get_no_configured_sampling(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(model="gpt-5", temperature=0.2)
    await provider.chat("hi", tool_choice={"type": "function", "function": {"name": "get_weather"}},
                        tools=[WEATHER.to_openai()])
    body = _sent(sim)[0]
    assert "temperature" not in body
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["tools"][0]["name"] == "get_weather" and "function" not in body["tools"][0]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_an_answer_cut_by_max_output_tokens_finishes_with_length(sim: ProviderSimulator, make_provider: Any,
                                                                       stream: bool) -> None:
    provider = await make_provider()
    question = "a fairly long question that needs room to answer, " * 3
    response = await _ask(provider, question, stream, max_tokens=16)  # the API's smallest limit
    assert response.native_finish_reason == "incomplete"
    assert response.finish_reason == "length"
    assert response.metadata["incomplete_reason"] == "max_output_tokens"
    assert len(response.content) == 64  # 16 tokens of the simulator's 4 characters
    assert _sent(sim)[0]["max_output_tokens"] == 16


async def test_arguments_the_api_lacks_are_refused_before_sending(sim: ProviderSimulator,
                                                                  make_provider: Any) -> None:
    provider = await make_provider()
    with pytest.raises(ValidationError, match="no stop sequences"):
        await provider.chat("hi", stop=["\n"])
    with pytest.raises(ValidationError, match="unknown argument 'frobnicate'"):
        await provider.chat("hi", frobnicate=True)
    with pytest.raises(ValidationError, match="invalid message"):
        await provider.chat(["a bare string inside a list"])
    with pytest.raises(ValidationError, match="invalid message"):
        await collect_stream(provider.chat_stream([{"role": "wizard", "content": "hi"}]))
    with pytest.raises(ValidationError, match="has no id"):
        await provider.chat([Message.user("hi"), Message.assistant(tool_calls=[{"function": {"name": "f"}}])])
    assert sim.request_count == 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_http_errors_map_onto_our_tree(sim: ProviderSimulator, make_provider: Any, stream: bool) -> None:
    provider = await make_provider()
    sim.fault("openai_responses", Fault.rate_limited(retry_after=2))
    with pytest.raises(RateLimitError) as info:
        await _ask(provider, "hi", stream)
    assert info.value.status_code == 429 and info.value.retry_after == 2 and info.value.retryable
    assert info.value.error_code == "rate_limit_exceeded"
    assert API_KEY not in repr(info.value) and API_KEY not in str(info.value.body)


def _stream_case(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"provider": "openai_responses", "kind": "chat_stream",
            "request": {"method": "POST", "path": "/v1/responses", "body": {}},
            "response": {"status": 200, "content_type": "text/event-stream; charset=utf-8", "headers": {},
                         "sse": [{"event": e["type"], "data": json.dumps(e)} for e in events]}}


_CREATED = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "model": "gpt-4o"}}
_DELTA = {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hel"}


async def test_an_error_event_in_a_stream_raises_the_mapped_error(sim: ProviderSimulator,
                                                                  make_provider: Any) -> None:
    provider = await make_provider()
    sim.replay(_stream_case([_CREATED, _DELTA, {"type": "error", "code": "server_error",
                                                "message": "The server had an error", "param": None}]))
    chunks = []
    with pytest.raises(ProviderUnavailableError, match="The server had an error"):
        async for chunk in provider.chat_stream("hi"):
            chunks.append(chunk)
    assert [c.delta for c in chunks] == ["Hel"]


async def test_a_failed_response_raises_its_error(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    failed = {"type": "response.failed", "response": {
        "id": "resp_1", "status": "failed", "model": "gpt-4o",
        "error": {"code": "rate_limit_exceeded", "message": "Too many tokens"}}}
    sim.replay(_stream_case([_CREATED, failed]))
    with pytest.raises(RateLimitError, match="Too many tokens") as info:
        await collect_stream(provider.chat_stream("hi"))
    assert info.value.error_code == "rate_limit_exceeded" and info.value.retryable


async def test_a_stream_that_ends_early_is_not_a_complete_answer(sim: ProviderSimulator,
                                                                make_provider: Any) -> None:
    provider = await make_provider()
    sim.replay(_stream_case([_CREATED, _DELTA]))
    with pytest.raises(StreamInterruptedError) as info:
        await collect_stream(provider.chat_stream("hi"))
    assert info.value.partial_content == "Hel"
    sim.replay(_stream_case([_CREATED]))
    with pytest.raises(NetworkError, match="before response.completed"):
        await collect_stream(provider.chat_stream("hi"))


async def test_health_check_lists_models_and_spends_nothing(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    assert await provider.health_check()
    assert "gpt-4o" in await provider.list_models()
    assert sim.requests_for("openai_responses") == []
    sim.fault("openai", Fault.unauthorized(), endpoint="models")
    assert not await provider.health_check()


async def test_fallback_from_responses_to_anthropic_through_the_manager(sim: ProviderSimulator,
                                                                        transport: str) -> None:
    config = ConfigurationManager({
        "providers": {
            "responses": {"type": "openai_responses", "api_key": API_KEY, "base_url": sim.openai_base_url,
                          "model": "gpt-4.1-mini", "transport": transport},
            "claude": {"type": "anthropic", "api_key": "sk-ant-test-0000000000", "base_url": sim.anthropic_base_url,
                       "model": "claude-sonnet-4-5", "transport": transport},
        },
        "fallback_chain": ["responses", "claude"],
        "retry": {"max_retries": 0},
    }, env={})
    manager = LLMManager(config)
    try:
        sim.fault("openai_responses", Fault.error(503), times=None)
        response = await manager.chat("hello", tools=[WEATHER])
        assert response.provider == "anthropic"
        assert response.content == "Simulated reply to: hello"
        assert response.fallback_path == ["responses", "claude"]
        assert len(sim.requests_for("openai_responses")) == 1 and len(sim.requests_for("anthropic")) == 1
    finally:
        await manager.cleanup()


def test_answers_are_priced_from_openai_prices() -> None:
    from spoon_llm.pricing import PriceBook
    from spoon_llm.types import TokenUsage

    book = PriceBook()
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    ours = book.cost(usage, "gpt-4.1-mini", provider_type="openai_responses")
    assert not ours.unpriced and ours.total_cost > 0
    assert ours.total_cost == book.cost(usage, "gpt-4.1-mini", provider_type="openai").total_cost


async def test_the_openai_provider_speaks_the_responses_api_when_configured(sim: ProviderSimulator,
                                                                           build_provider: Any) -> None:
    from spoon_llm.providers.openai import OpenAIProvider

    provider = await build_provider(OpenAIProvider, api_key=API_KEY, base_url=sim.openai_base_url,
                                    model="gpt-4.1-mini", api="responses")
    answer = await provider.chat("hello", max_tokens=50)
    streamed = await collect_stream(provider.chat_stream("hello again"))
    assert answer.content == "Simulated reply to: hello" and answer.native_finish_reason == "completed"
    assert streamed.content == "Simulated reply to: hello again"
    assert [r.body["max_output_tokens"] for r in sim.requests_for("openai_responses")[:1]] == [50]
    assert len(sim.requests_for("openai_responses")) == 2 and sim.requests_for("openai", "chat") == []
    vectors = await provider.embed(["a", "b"])  # the other endpoints stay on the usual API
    assert len(vectors.embeddings) == 2 and await provider.health_check()
    await provider.cleanup()
    assert provider._responses is None


@pytest.mark.parametrize("section", [{"type": "anthropic"}, {"type": "openrouter"}, {"type": "deepseek"}])
def test_api_responses_is_refused_where_it_means_nothing(section: dict[str, Any]) -> None:
    from spoon_llm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match='understood by the openai and azure providers only'):
        ConfigurationManager({"providers": {"x": {**section, "api_key": "k", "api": "responses"}}}, env={})


async def test_metadata_names_the_provider_and_its_models(make_provider: Any) -> None:
    provider = await make_provider()
    meta = provider.get_metadata()
    assert meta.name == "openai_responses" and "gpt-5-mini" in meta.available_models
    assert "reasoning" in [c.value for c in meta.capabilities]
    assert API_KEY not in repr(provider)


async def test_a_stream_request_answered_with_one_json_response(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    body = {"id": "resp_1", "status": "completed", "model": "gpt-4o", "usage": {"input_tokens": 2, "output_tokens": 1},
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}]}
    sim.replay({"provider": "openai_responses", "kind": "chat", "request": {"path": "/v1/responses", "body": {}},
                "response": {"status": 200, "content_type": "application/json", "headers": {}, "body": body}})
    chunks = [chunk async for chunk in provider.chat_stream("hi")]
    assert [c.kind for c in chunks] == ["text", "final"] and chunks[0].delta == "Hi"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None


async def test_a_strict_simulator_accepts_what_we_send_and_refuses_what_the_api_would(transport: str) -> None:
    from spoon_llm.errors import AuthenticationError, InvalidRequestError
    from spoon_llm.providers.openai_responses import OpenAIResponsesProvider

    with ProviderSimulator(strict=True) as strict:
        provider = OpenAIResponsesProvider()
        await provider.initialize({"api_key": API_KEY, "base_url": strict.openai_base_url, "transport": transport})
        try:
            await provider.chat("hi", tools=[WEATHER], max_tokens=64, reasoning_effort="low", json=True)
            await collect_stream(provider.chat_stream("hi", temperature=1))
            with pytest.raises(InvalidRequestError, match="Unknown parameter: 'frobnicate'"):
                await provider.chat("hi", extra_body={"frobnicate": 1})
            with pytest.raises(InvalidRequestError, match="max_output_tokens"):
                await provider.chat("hi", max_tokens=8)
            with pytest.raises(AuthenticationError):
                await provider.chat("hi", extra_headers={"Authorization": ""})
        finally:
            await provider.cleanup()
