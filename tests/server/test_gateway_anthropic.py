"""The Anthropic front of a live gateway, driven by the official anthropic SDK (sync and async)."""

from __future__ import annotations

import anthropic
import httpx2

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

from .conftest import MASTER_KEY, Gateway

WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(gateway: Gateway, key: str = MASTER_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def async_client(gateway: Gateway, key: str = MASTER_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


def test_messages_native(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="Hello there", usage=Usage(input_tokens=30, output_tokens=3,
                                                                  cached_tokens=10)), times=1)
    with client(gateway) as c:
        raw = c.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=200, system="Be kind.", extra_body={"temperature": 0.5},
            messages=[{"role": "user", "content": "Hi"}])
    message = raw.parse()
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.input_tokens == 20  # Anthropic's input_tokens exclude cache reads
    assert raw.headers["x-spoon-provider"] == "anthropic"
    assert "x-spoon-cache" not in raw.headers  # no response cache configured (prompt-cache reads are in usage)
    body = sim.last_request("anthropic").body
    assert body["system"] == "Be kind." and body["max_tokens"] == 200 and body["temperature"] == 0.5


async def test_async_stream_event_sequence(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="alpha beta", chunks=["alpha", " beta"],
                                  usage=Usage(input_tokens=7, output_tokens=2)), times=1)
    async with async_client(gateway) as c:
        async with c.messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                     messages=[{"role": "user", "content": "go"}]) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.content[0].text == "alpha beta"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 2)


def test_raw_event_stream_has_ping_and_usage(gateway: Gateway, sim: ProviderSimulator) -> None:
    events = []
    with httpx2.stream("POST", gateway.url + "/v1/messages", headers={"x-api-key": MASTER_KEY}, json={
            "model": "claude-sonnet-4-5", "max_tokens": 32, "stream": True,
            "messages": [{"role": "user", "content": "hello"}]}, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events[:2] == ["message_start", "ping"]
    assert events[-2:] == ["message_delta", "message_stop"]


def test_tool_use_round_trip(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="toolu_1")]), times=1)
    with client(gateway) as c:
        first = c.messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[WEATHER_TOOL],
                                  messages=[{"role": "user", "content": "Weather in Paris?"}])
        use = next(b for b in first.content if b.type == "tool_use")
        assert first.stop_reason == "tool_use"
        assert (use.id, use.name, use.input) == ("toolu_1", "get_weather", {"city": "Paris"})
        c.messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[WEATHER_TOOL], messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"}]}])
    sent = sim.last_request("anthropic").body
    assert sent["messages"][1]["content"][-1]["type"] == "tool_use"
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"
    assert sent["messages"][2]["content"][0]["tool_use_id"] == "toolu_1"


def test_streamed_tool_use(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("anthropic", Reply(text="Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Bern"})]),
               times=1)
    with client(gateway) as c, c.messages.stream(model="claude-sonnet-4-5", max_tokens=100, tools=[WEATHER_TOOL],
                                                 messages=[{"role": "user", "content": "Bern?"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Bern"}
    assert final.stop_reason == "tool_use"


def test_anthropic_request_served_by_openai_compatible(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="from gpt", usage=Usage(input_tokens=11, output_tokens=2)), times=1)
    sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", {"city": "Kyiv"}, id="call_9")]), times=1)
    with client(gateway) as c:
        text = c.messages.create(model="gpt-4o-mini", max_tokens=50, system="Terse.",
                                 stop_sequences=["END"], messages=[{"role": "user", "content": "Hi"}])
        tools = c.messages.create(model="gpt-4o-mini", max_tokens=50, tools=[WEATHER_TOOL],
                                  tool_choice={"type": "tool", "name": "get_weather"},
                                  messages=[{"role": "user", "content": "Kyiv?"}])
    assert text.content[0].text == "from gpt" and text.stop_reason == "end_turn"
    assert (text.usage.input_tokens, text.usage.output_tokens) == (11, 2)
    first, second = (r.body for r in sim.requests_for("openai"))
    assert first["messages"] == [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Hi"}]
    assert first["stop"] == ["END"]
    assert second["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert second["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    use = tools.content[0]
    assert (use.type, use.id, use.input) == ("tool_use", "call_9", {"city": "Kyiv"})
    assert tools.stop_reason == "tool_use"


async def test_async_stream_served_by_openai_compatible(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="chunked answer", chunks=["chunked", " answer"]), times=1)
    async with async_client(gateway) as c:
        async with c.messages.stream(model="gpt-4o", max_tokens=50,
                                     messages=[{"role": "user", "content": "go"}]) as stream:
            texts = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
    assert texts == ["chunked", " answer"]
    assert final.usage.output_tokens > 0
    assert sim.last_request("openai").stream


def test_images_translate_to_openai_parts(gateway: Gateway, sim: ProviderSimulator) -> None:
    with client(gateway) as c:
        c.messages.create(model="gpt-4o", max_tokens=20, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}])
    parts = sim.last_request("openai").body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo="


def test_count_tokens(gateway: Gateway, sim: ProviderSimulator) -> None:
    with client(gateway) as c:
        short = c.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}])
        long = c.messages.count_tokens(model="claude-sonnet-4-5", tools=[WEATHER_TOOL], system="x " * 200,
                                       messages=[{"role": "user", "content": "Hi " * 100}])
    assert 0 < short.input_tokens < long.input_tokens
    assert sim.request_count == 0  # counted by the gateway, no upstream call
