"""Anthropic Messages routes through the official anthropic SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

MODEL = "claude-sonnet-4-6"
MESSAGES: Any = [{"role": "user", "content": "Hello Claude"}]
TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


async def test_messages_default_answer(anthropic_client: Any, sim: ProviderSimulator) -> None:
    raw = await anthropic_client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, system="Be brief.", messages=MESSAGES
    )
    message = await raw.parse()
    assert message.content[0].text == "Simulated reply to: Hello Claude"
    assert message.stop_reason == "end_turn"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.usage.input_tokens == 6  # (9 + 12 characters) / 4, rounded up
    assert message.usage.output_tokens == 8
    assert raw.headers["request-id"].startswith("req_")
    assert message._request_id == raw.headers["request-id"]


async def test_messages_scripted_tool_use_and_cache_usage(anthropic_client: Any, sim: ProviderSimulator) -> None:
    usage = Usage(input_tokens=2000, output_tokens=50, cached_tokens=1500, cache_write_tokens=100)
    reply = Reply(text="Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Paris"})], usage=usage)
    sim.script("anthropic", reply)
    message = await anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, tools=TOOLS)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].name == "get_weather"
    assert message.content[1].input == {"city": "Paris"}
    assert message.content[1].id.startswith("toolu_")
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 400  # Anthropic's input_tokens excludes cache reads and writes
    assert message.usage.cache_read_input_tokens == 1500
    assert message.usage.cache_creation_input_tokens == 100


async def test_stream_text_events(anthropic_client: Any) -> None:
    stream = await anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert "content_block_stop" in types
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "Simulated reply to: Hello Claude"
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == 8


async def test_stream_has_ping_events(sim: ProviderSimulator) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert 'event: ping\ndata: {"type": "ping"}\n\n' in response.text


async def test_stream_tool_use_and_thinking(anthropic_client: Any, sim: ProviderSimulator) -> None:
    reply = Reply(
        text="Calling the tool.",
        reasoning="The user wants weather.",
        tool_calls=[ToolCall("get_weather", {"city": "Paris", "unit": "C"})],
    )
    sim.script("anthropic", reply)
    async with anthropic_client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        messages=MESSAGES,
        tools=TOOLS,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(deltas)
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == "The user wants weather."
    assert final.content[0].signature
    assert final.content[1].text == "Calling the tool."
    assert final.content[2].input == {"city": "Paris", "unit": "C"}
    assert final.stop_reason == "tool_use"


async def test_default_thinking_when_enabled(anthropic_client: Any) -> None:
    message = await anthropic_client.messages.create(
        model=MODEL, max_tokens=2048, messages=MESSAGES, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert message.content[0].type == "thinking"
    assert message.content[0].thinking == "Simulated thinking about: Hello Claude"


async def test_forced_tool_choice(anthropic_client: Any) -> None:
    message = await anthropic_client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather"}
    )
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"city": "simulated"}
    assert message.stop_reason == "tool_use"


async def test_finish_reason_normalised_and_native(anthropic_client: Any, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="cut", finish_reason="length"), times=1)
    sim.script("anthropic", Reply(text="paused", finish_reason="pause_turn"), times=1)
    first = await anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    second = await anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert (first.stop_reason, second.stop_reason) == ("max_tokens", "pause_turn")


async def test_structured_output(anthropic_client: Any) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    message = await anthropic_client.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert json.loads(message.content[0].text) == {"answer": 0}


async def test_count_tokens(anthropic_client: Any, sim: ProviderSimulator) -> None:
    result = await anthropic_client.messages.count_tokens(model=MODEL, system="Be brief.", messages=MESSAGES)
    assert result.input_tokens == 6
    assert sim.last_request("anthropic").endpoint == "count_tokens"


async def test_beta_messages(anthropic_client: Any, sim: ProviderSimulator) -> None:
    message = await anthropic_client.beta.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert message.content[0].text == "Simulated reply to: Hello Claude"
    # Older SDKs (and the recorded corpus) send beta requests with ?beta=true.
    body = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post("/v1/messages?beta=true", json=body, headers={"anthropic-version": "2023-06-01"})
    assert response.json()["content"][0]["text"] == "Simulated reply to: Hello Claude"
    record = sim.last_request()
    assert record.query == {"beta": "true"}
    assert (record.vendor, record.endpoint) == ("anthropic", "chat")


async def test_models(anthropic_client: Any) -> None:
    page = await anthropic_client.models.list()
    ids = [m.id for m in page.data]
    assert MODEL in ids
    model = await anthropic_client.models.retrieve(MODEL)
    assert model.display_name == "Claude Sonnet 4.6"
