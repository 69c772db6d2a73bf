"""OpenAI-compatible routes (OpenAI, OpenRouter, DeepSeek, vLLM) through the official openai SDK."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                "required": ["city"],
            },
        },
    }
]


async def test_chat_default_answer(openai_client: Any, sim: ProviderSimulator) -> None:
    response = await openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = response.parse()
    assert completion.choices[0].message.content == "Simulated reply to: Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.object == "chat.completion"
    usage = completion.usage
    assert usage.prompt_tokens == 5  # (9 + 11 characters) / 4
    assert usage.completion_tokens == 8  # 31 characters / 4, rounded up
    assert usage.total_tokens == 13
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["content-type"] == "application/json"


async def test_chat_default_answer_is_deterministic(openai_client: Any) -> None:
    first = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    second = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage
    assert first.id != second.id


async def test_chat_stream_with_usage(openai_client: Any) -> None:
    stream = await openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Simulated reply to: Hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


async def test_chat_stream_without_usage(openai_client: Any) -> None:
    stream = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_scripted_reply_with_usage(openai_client: Any, sim: ProviderSimulator) -> None:
    usage = Usage(input_tokens=1200, output_tokens=90, cached_tokens=1024, reasoning_tokens=64)
    sim.script("openai", Reply(text="Scripted!", finish_reason="length", usage=usage), times=1)
    completion = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "Scripted!"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.prompt_tokens == 1200
    assert completion.usage.completion_tokens == 90
    assert completion.usage.prompt_tokens_details.cached_tokens == 1024
    assert completion.usage.completion_tokens_details.reasoning_tokens == 64
    again = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.choices[0].message.content == "Simulated reply to: Hello there"


async def test_script_order_model_scope_and_forever(openai_client: Any, sim: ProviderSimulator) -> None:
    sim.script("openai", "only for gpt-4.1", model="gpt-4.1")
    sim.script("openai", "first", times=1)
    sim.script("openai", "then always")
    texts = []
    for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4.1", "gpt-4o-mini"):
        completion = await openai_client.chat.completions.create(model=model, messages=MESSAGES)
        texts.append(completion.choices[0].message.content)
    assert texts == ["first", "then always", "only for gpt-4.1", "then always"]


async def test_tool_calls(openai_client: Any, sim: ProviderSimulator) -> None:
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "CET"}, id="call_fixed")]
    sim.script("openai", Reply(tool_calls=calls))
    completion = await openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert [c.function.name for c in message.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert message.tool_calls[0].id.startswith("call_")
    assert message.tool_calls[1].id == "call_fixed"


async def test_tool_call_stream_deltas_by_index(openai_client: Any, sim: ProviderSimulator) -> None:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    calls = [ToolCall("get_weather", {"city": "Paris", "days": 3}), ToolCall("get_time", {"tz": "CET"})]
    sim.script("openai", Reply(text="Checking.", tool_calls=calls))
    stream = await openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, stream=True, stream_options={"include_usage": True}
    )
    state = ChatCompletionStreamState()
    fragments = 0
    async for chunk in stream:
        state.handle_chunk(chunk)
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                assert delta.index in (0, 1)
                fragments += 1
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [
        {"city": "Paris", "days": 3},
        {"tz": "CET"},
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert fragments > 2  # arguments arrive in several fragments


async def test_forced_tool_choice_default_arguments_follow_schema(openai_client: Any) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, tool_choice="required"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "simulated", "days": 1}


async def test_response_format_json_object(openai_client: Any) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content) == {"reply": "Simulated reply to: Hello there"}


async def test_response_format_json_schema_parses_with_pydantic(openai_client: Any) -> None:
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        tags: list[str]

    class Answer(BaseModel):
        title: str
        count: int
        ok: bool
        items: list[Item]

    completion = await openai_client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)
    parsed = completion.choices[0].message.parsed
    assert parsed == Answer(title="simulated", count=0, ok=False, items=[Item(name="simulated", tags=["simulated"])])


async def test_n_choices_and_max_tokens(openai_client: Any) -> None:
    completion = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=3, max_tokens=2)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" for c in completion.choices)
    assert completion.choices[0].message.content == "Simulate"  # cut to 4 * max_tokens characters


async def test_legacy_completions(openai_client: Any) -> None:
    completion = await openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Four plus five?")
    assert completion.choices[0].text == "Simulated reply to: Four plus five?"
    assert completion.object == "text_completion"
    assert completion.usage.prompt_tokens == 4
    stream = await openai_client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Four plus five?", stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Simulated reply to: Four plus five?"
    assert chunks[-1].usage.total_tokens > 0


async def test_embeddings_base64_default_and_dimensions(openai_client: Any) -> None:
    # The SDK asks for base64 by default and decodes it into floats.
    result = await openai_client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 1536
    assert abs(sum(v * v for v in result.data[0].embedding) - 1.0) < 1e-3
    assert result.usage.prompt_tokens == 3  # "alpha" 2 + "beta" 1
    again = await openai_client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=64)
    assert len(again.data[0].embedding) == 64


async def test_embeddings_float_and_base64_agree(openai_client: Any, sim: ProviderSimulator) -> None:
    floats = await openai_client.embeddings.create(
        model="text-embedding-3-large", input="same text", encoding_format="float", dimensions=8
    )
    assert sim.last_request("openai").body["encoding_format"] == "float"
    async with httpx2.AsyncClient(base_url=sim.openai_base_url) as raw:
        response = await raw.post(
            "/embeddings",
            json={
                "model": "text-embedding-3-large",
                "input": "same text",
                "encoding_format": "base64",
                "dimensions": 8,
            },
        )
    encoded = response.json()["data"][0]["embedding"]
    decoded = struct.unpack("<8f", base64.b64decode(encoded))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)


async def test_models_list_and_retrieve(openai_client: Any) -> None:
    page = await openai_client.models.list()
    ids = [m.id for m in page.data]
    assert "gpt-4o-mini" in ids
    model = await openai_client.models.retrieve("gpt-4o")
    assert model.id == "gpt-4o"
    assert model.object == "model"


async def test_vllm_health_and_models(sim: ProviderSimulator) -> None:
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        health = await raw.get("/health")
        models = await raw.get("/v1/models")
    assert health.status_code == 200
    assert health.content == b""
    assert models.json()["object"] == "list"


async def test_openrouter_route(openrouter_client: Any, sim: ProviderSimulator) -> None:
    sim.script("openrouter", Reply(text="Hi from OpenRouter", reasoning="thinking..."))
    completion = await openrouter_client.chat.completions.create(model="anthropic/claude-sonnet-4.5", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hi from OpenRouter"
    extra = completion.choices[0].message.model_extra
    assert extra["reasoning"] == "thinking..."
    assert completion.choices[0].model_extra["native_finish_reason"] == "stop"
    assert completion.model_extra["provider"] == "Simulator"
    assert completion.usage.model_extra["cost"] > 0
    record = sim.last_request()
    assert (record.vendor, record.path) == ("openrouter", "/api/v1/chat/completions")


async def test_openrouter_stream_has_processing_comment_and_usage(sim: ProviderSimulator) -> None:
    body = {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "stream": True}
    async with httpx2.AsyncClient(base_url=sim.openrouter_base_url) as raw:
        response = await raw.post("/chat/completions", json=body)
    text = response.text
    assert text.startswith(": OPENROUTER PROCESSING\n\n")
    assert '"usage":{' in text  # OpenRouter sends usage without stream_options
    assert text.endswith("data: [DONE]\n\n")


async def test_deepseek_routes_and_reasoning(deepseek_client: Any, sim: ProviderSimulator) -> None:
    sim.script("deepseek", Reply(text="42", reasoning="Let me think.", usage=Usage(cached_tokens=2)))
    completion = await deepseek_client.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES)
    message = completion.choices[0].message
    assert message.content == "42"
    assert message.model_extra["reasoning_content"] == "Let me think."
    assert completion.usage.model_extra["prompt_cache_hit_tokens"] == 2
    assert sim.last_request().path == "/chat/completions"

    import openai

    async with openai.AsyncOpenAI(base_url=sim.base_url + "/beta", api_key="sk-x", max_retries=0) as beta:
        stream = await beta.chat.completions.create(model="deepseek-chat", messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "42"
    assert chunks[-1].usage is not None  # DeepSeek puts usage on its last chunk
    assert sim.last_request().path == "/beta/chat/completions"
    assert sim.last_request().vendor == "deepseek"
