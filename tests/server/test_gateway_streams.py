"""Streams of a live gateway, driven by the official SDKs: tool calls streamed chunk for chunk in each family's
shape (whichever backend answers), ``/v1/completions`` with ``stream=true``, the Anthropic event stream as
Claude-Code-style clients read it, and the trace headers a stream carries."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx2
import openai
import pytest

from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall, Usage

from .conftest import MASTER_KEY, Gateway, gateway_of_its_own

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "detail": {"type": "string"}},
                   "required": ["city"]}}}
WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Weather for a city",
                     "input_schema": WEATHER["function"]["parameters"]}  # type: ignore[index]
LONG_ARGUMENTS = {"city": "Reykjavik", "detail": "hourly wind, temperature and precipitation for three days"}


@pytest.fixture(scope="module")
def streams_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of this module's own, so the circuits its fallback test opens stay here."""
    with gateway_of_its_own(simulators, tmp_path_factory, "streams", master_key=MASTER_KEY) as running:
        yield running


def sse(gateway: Gateway, path: str, body: dict[str, object]) -> tuple[httpx2.Headers, list[dict[str, object]]]:
    """The events of one streamed answer, decoded (``[DONE]`` as ``{"done": True}``)."""
    events: list[dict[str, object]] = []
    with httpx2.stream("POST", gateway.url + path, headers={"authorization": f"Bearer {MASTER_KEY}"}, json=body,
                       timeout=15) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append({"done": True} if line == "data: [DONE]" else json.loads(line[6:]))
        return response.headers, events


def test_openai_tool_calls_stream_as_deltas_before_the_finish(streams_gateway: Gateway,
                                                              sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", LONG_ARGUMENTS, id="call_long")]), times=1)
    _, events = sse(streams_gateway, "/v1/chat/completions", {
        "model": "gpt-4o-mini", "stream": True, "tools": [WEATHER],
        "messages": [{"role": "user", "content": "weather?"}]})
    deltas = [e["choices"][0]["delta"]["tool_calls"][0] for e in events  # type: ignore[index]
              if e.get("choices") and "tool_calls" in e["choices"][0]["delta"]]  # type: ignore[index]
    # The head (index, id, type, name) once, then argument fragments, as OpenAI streams them.
    assert deltas[0]["id"] == "call_long" and deltas[0]["function"]["name"] == "get_weather"
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in deltas[1:])
    assert len(deltas) >= 3  # not one whole call at the end
    assert json.loads("".join(d["function"]["arguments"] for d in deltas)) == LONG_ARGUMENTS
    finish_at = next(i for i, e in enumerate(events) if e.get("choices")
                     and e["choices"][0]["finish_reason"] == "tool_calls")  # type: ignore[index]
    last_delta_at = max(i for i, e in enumerate(events) if e.get("choices")
                        and "tool_calls" in e["choices"][0]["delta"])  # type: ignore[index]
    assert last_delta_at < finish_at and events[-1] == {"done": True}


async def test_openai_sdk_accumulates_streamed_calls_served_by_anthropic(streams_gateway: Gateway,
                                                                        sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="Checking.", tool_calls=[ToolCall("get_weather", LONG_ARGUMENTS,
                                                                         id="toolu_a")]), times=1)
    async with openai.AsyncOpenAI(base_url=streams_gateway.url + "/v1", api_key=MASTER_KEY,
                                  max_retries=0) as client:
        async with client.chat.completions.stream(model="claude-sonnet-4-5", tools=[WEATHER],  # type: ignore[list-item]
                                                  messages=[{"role": "user", "content": "weather?"}]) as stream:
            fragments = [event async for event in stream if event.type == "tool_calls.function.arguments.delta"]
            final = await stream.get_final_completion()
    assert len(fragments) >= 2
    message = final.choices[0].message
    assert message.content == "Checking."
    call = message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (  # type: ignore[union-attr]
        "toolu_a", "get_weather", LONG_ARGUMENTS)
    assert final.choices[0].finish_reason == "tool_calls"


def _events(gateway: Gateway, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    out = []
    with httpx2.stream("POST", gateway.url + "/v1/messages", headers={"x-api-key": MASTER_KEY}, json=body,
                       timeout=15) as response:
        assert response.status_code == 200
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


@pytest.mark.parametrize("backend", ["claude-sonnet-4-5", "gpt-4o-mini"])
def test_anthropic_tool_use_streams_input_json_deltas(streams_gateway: Gateway, sim: ProviderSimulator,
                                                      backend: str) -> None:
    provider = "anthropic" if backend.startswith("claude") else "openai"
    sim.script(provider, Reply(text="Let me look.", tool_calls=[ToolCall("get_weather", LONG_ARGUMENTS, id="t1")],
                               usage=Usage(input_tokens=30, output_tokens=12)), times=1)
    events = _events(streams_gateway, {"model": backend, "max_tokens": 200, "stream": True,
                                       "tools": [WEATHER_ANTHROPIC],
                                       "messages": [{"role": "user", "content": "weather?"}]})
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert set(start["usage"]) >= {"input_tokens", "output_tokens", "cache_read_input_tokens",  # type: ignore[index]
                                   "cache_creation_input_tokens"}
    blocks = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "tool_use"]  # type: ignore[index]
    assert (blocks[1]["id"], blocks[1]["name"], blocks[1]["input"]) == ("t1", "get_weather", {})  # type: ignore[index]
    fragments = [data["delta"]["partial_json"] for name, data in events  # type: ignore[index]
                 if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"]  # type: ignore[index]
    assert len(fragments) >= 2 and json.loads("".join(fragments)) == LONG_ARGUMENTS  # type: ignore[arg-type]
    # Every block opened is closed, in order, before message_delta.
    opened = [data["index"] for name, data in events if name == "content_block_start"]
    closed = [data["index"] for name, data in events if name == "content_block_stop"]
    assert opened == closed == [0, 1]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"  # type: ignore[index]
    assert delta["usage"]["output_tokens"] == 12  # type: ignore[index]

    sim.script(provider, Reply(text="Let me look.", tool_calls=[ToolCall("get_weather", LONG_ARGUMENTS, id="t1")],
                               usage=Usage(input_tokens=30, output_tokens=12)), times=1)
    with anthropic.Anthropic(base_url=streams_gateway.url, api_key=MASTER_KEY, max_retries=0) as client, \
            client.messages.stream(model=backend, max_tokens=200, tools=[WEATHER_ANTHROPIC],  # type: ignore[list-item]
                                   messages=[{"role": "user", "content": "weather?"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == LONG_ARGUMENTS  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 12)


def test_completions_stream_with_the_sdk(streams_gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="once upon a time", chunks=["once", " upon", " a time"],
                               usage=Usage(input_tokens=4, output_tokens=4)), times=1)
    with openai.OpenAI(base_url=streams_gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0) as client:
        chunks = list(client.completions.create(model="gpt-4o-mini", prompt="Tell a story", stream=True,
                                                stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "once upon a time" and texts[:3] == ["once", " upon", " a time"]
    assert all(c.object == "text_completion" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert sim.last_request("openai").stream
    assert sim.last_request("openai").body["messages"] == [{"role": "user", "content": "Tell a story"}]


def test_a_stream_carries_the_attempt_trace_of_its_fallbacks(streams_gateway: Gateway,
                                                             sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.unavailable(), model="flaky-model", times=None)
    headers, events = sse(streams_gateway, "/v1/chat/completions", {
        "model": "resilient", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    trace = headers["x-spoon-attempts"].split(",")
    assert trace[0] == "flaky:503" and trace[-1] == "anthropic:ok"
    assert headers["x-spoon-provider"] == "anthropic" and headers["x-request-id"]
    assert events[-1] == {"done": True}
    headers, _ = sse(streams_gateway, "/v1/chat/completions", {
        "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert headers["x-spoon-attempts"] == "openai:ok"
