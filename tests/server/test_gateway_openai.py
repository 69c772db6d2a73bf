"""The OpenAI front of a live gateway, driven by the official openai SDK (sync and async)."""

from __future__ import annotations

import json

import openai
import pytest

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

from .conftest import MASTER_KEY, Gateway

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def client(gateway: Gateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def async_client(gateway: Gateway, key: str = MASTER_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_chat_through_an_alias_carries_the_trace_headers(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="hello from the simulator", usage=Usage(input_tokens=12, output_tokens=5)))
    with client(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="fast", messages=[{"role": "user", "content": "Say hello"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from the simulator"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 5)
    assert completion.model == "gpt-4o-mini"
    headers = raw.headers
    assert headers["x-spoon-provider"] == "openai"
    assert headers["x-spoon-model"] == "gpt-4o-mini"
    assert headers["x-spoon-attempts"] == "openai:ok"
    assert float(headers["x-spoon-cost-usd"]) > 0
    assert headers["x-request-id"]
    assert "x-spoon-cache" not in headers  # sent only when a response cache is configured
    upstream = sim.last_request("openai")
    assert upstream.body["model"] == "gpt-4o-mini"
    assert upstream.body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert MASTER_KEY not in str(upstream.headers)  # the client's key never travels upstream


async def test_async_chat_passes_sampling_settings_through(gateway: Gateway, sim: ProviderSimulator) -> None:
    async with async_client(gateway) as c:
        completion = await c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            temperature=0.2, max_completion_tokens=50, seed=7)
    assert completion.choices[0].message.content == "Simulated reply to: Hi"
    body = sim.last_request("openai").body
    assert body["model"] == "gpt-4o"
    assert body["temperature"] == 0.2
    assert body["seed"] == 7
    assert 50 in (body.get("max_tokens"), body.get("max_completion_tokens"))


def test_stream_chunk_for_chunk_with_usage_and_done(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="one two three", chunks=["one", " two", " three"],
                               usage=Usage(input_tokens=9, output_tokens=3)))
    with client(gateway) as c:
        stream = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "count"}],
                                           stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    deltas = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert deltas == ["one", " two", " three"]
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 3)
    assert len({ch.id for ch in chunks}) == 1


def test_stream_without_include_usage_sends_no_usage_chunk(gateway: Gateway, sim: ProviderSimulator) -> None:
    with client(gateway) as c:
        chunks = list(c.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]))
    assert all(ch.usage is None for ch in chunks)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "Simulated reply to: hi"


def test_tool_calls_round_trip(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_abc")]), times=1)
    with client(gateway) as c:
        first = c.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], tool_choice="auto",
                                          messages=[{"role": "user", "content": "Weather in Paris?"}])
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
            "call_abc", "get_weather", {"city": "Paris"})
        second = c.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=[
            {"role": "user", "content": "Weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'}])
    assert second.choices[0].message.content
    sent = sim.last_request("openai").body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_abc"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'}


async def test_streamed_tool_calls(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_1"),
                                           ToolCall("get_weather", {"city": "Rome"}, id="call_2")]), times=1)
    async with async_client(gateway) as c:
        stream = await c.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], stream=True,
                                                 messages=[{"role": "user", "content": "Oslo and Rome?"}])
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in stream:
            if not chunk.choices:
                continue
            for delta in chunk.choices[0].delta.tool_calls or ():
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                entry["name"] += (delta.function.name or "") if delta.function else ""
                entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("call_1", "get_weather", {"city": "Oslo"}), ("call_2", "get_weather", {"city": "Rome"})]


def test_openai_request_served_by_anthropic(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="bonjour", usage=Usage(input_tokens=20, output_tokens=2)), times=1)
    sim.script("anthropic", Reply(tool_calls=[ToolCall("get_weather", {"city": "Lyon"})]), times=1)
    with client(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=100,
            messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}])
        tools = c.chat.completions.create(model="claude-sonnet-4-5", tools=[WEATHER_TOOL], tool_choice="required",
                                          messages=[{"role": "user", "content": "Weather in Lyon?"}])
    text = raw.parse()
    assert text.choices[0].message.content == "bonjour"
    assert (text.usage.prompt_tokens, text.usage.completion_tokens) == (20, 2)
    assert raw.headers["x-spoon-provider"] == "anthropic"
    first = sim.requests_for("anthropic")[0].body
    assert first["system"] == "Answer in French." and first["max_tokens"] == 100
    assert first["messages"] == [{"role": "user", "content": "Hello"}]
    call = tools.choices[0].message.tool_calls[0]
    assert tools.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Lyon"})
    second = sim.requests_for("anthropic")[1].body
    assert second["tools"][0]["input_schema"]["required"] == ["city"]
    assert second["tool_choice"]["type"] == "any"


def test_openai_stream_served_by_anthropic(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="streamed from claude", chunks=["streamed", " from", " claude"]), times=1)
    with client(gateway) as c:
        chunks = list(c.chat.completions.create(model="claude-sonnet-4-5", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "stream please"}]))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "streamed from claude"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert sim.last_request("anthropic").stream


def test_completions(gateway: Gateway, sim: ProviderSimulator) -> None:
    with client(gateway) as c:
        completion = c.completions.create(model="gpt-4o-mini", prompt="Once upon a time", max_tokens=20)
    assert completion.choices[0].text
    assert completion.object == "text_completion"
    assert completion.usage is not None and completion.usage.total_tokens > 0


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(gateway: Gateway, sim: ProviderSimulator, encoding: str) -> None:
    with client(gateway) as c:
        result = c.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"],
                                     encoding_format=encoding)  # type: ignore[arg-type]
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) > 8 and result.data[0].embedding != result.data[1].embedding
    assert sim.last_request("openai").body["input"] == ["alpha", "beta"]


async def test_async_embeddings_default_encoding(gateway: Gateway, sim: ProviderSimulator) -> None:
    async with async_client(gateway) as c:  # the SDK asks for base64 and decodes it
        result = await c.embeddings.create(model="text-embedding-3-small", input="gamma")
    assert len(result.data) == 1 and all(isinstance(v, float) for v in result.data[0].embedding)


def test_models_lists_aliases_and_configured_models(gateway: Gateway) -> None:
    with client(gateway) as c:
        names = {m.id: m.owned_by for m in c.models.list()}
    assert names["fast"] == "spoon-llm" and names["resilient"] == "spoon-llm"
    assert names["gpt-4o-mini"] == "openai" and names["claude-sonnet-4-5"] == "anthropic"
    assert "text-embedding-3-small" in names


@pytest.mark.parametrize("field", [{"provider": "anthropic"}, {"fallback": ["anthropic"]}, {"deadline": 5},
                                   {"tags": {"team": "other"}}, {"cache_namespace": "tenant-b"}, {"cache": False},
                                   {"callbacks": []}, {"request_id": "chosen"}])
def test_a_body_may_not_set_the_gateways_own_call_arguments(gateway: Gateway, sim: ProviderSimulator,
                                                            field: dict[str, object]) -> None:
    # Routing, cost labels and cache namespaces are the gateway's to set for the calling key: a client naming them
    # would reach another provider section, pass as another team or read another tenant's cache entries.
    name = next(iter(field))
    with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                      extra_body=field)
        assert caught.value.body["param"] == name and "set by the gateway" in caught.value.body["message"]
        with pytest.raises(openai.BadRequestError):
            c.embeddings.create(model="text-embedding-3-small", input="x", extra_body=field)
        with pytest.raises(openai.BadRequestError):
            c.completions.create(model="gpt-4o-mini", prompt="x", extra_body=field)
    assert sim.requests_for("openai", "chat") == [] and sim.requests_for("anthropic", "chat") == []


def test_a_json_schema_answer_is_checked_and_carries_the_schema_upstream(gateway: Gateway,
                                                                         sim: ProviderSimulator) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    sim.script("openai", Reply(text='{"city": "Paris"}'), times=1)
    with client(gateway) as c:
        answer = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where?"}],
                                           response_format={"type": "json_schema", "json_schema": {
                                               "name": "place", "schema": schema}})
    assert json.loads(answer.choices[0].message.content or "") == {"city": "Paris"}
    assert sim.last_request("openai").body["response_format"]["json_schema"]["schema"] == schema

