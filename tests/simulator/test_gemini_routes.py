"""Gemini routes (v1beta and v1) through the official google-genai SDK."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

# google-genai subclasses aiohttp.ClientSession when aiohttp is installed, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

MODEL = "gemini-2.5-flash"


async def test_generate_content_default(gemini_client: Any, sim: ProviderSimulator) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(system_instruction="Be brief.")
    response = await gemini_client.models.generate_content(model=MODEL, contents="Hello Gemini", config=config)
    assert response.text == "Simulated reply to: Hello Gemini"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.prompt_token_count == 6  # (9 + 12 characters) / 4
    assert response.usage_metadata.candidates_token_count == 8
    assert response.usage_metadata.total_token_count == 14
    assert response.model_version == MODEL
    record = sim.last_request("gemini")
    assert record.model == MODEL
    assert record.endpoint == "chat"


async def test_generate_content_stream(gemini_client: Any) -> None:
    chunks = [
        c
        async for c in await gemini_client.models.generate_content_stream(
            model=MODEL, contents="Tell me about the weather today please"
        )
    ]
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == "Simulated reply to: Tell me about the weather today please"
    assert chunks[-1].candidates[0].finish_reason.value == "STOP"
    assert chunks[0].candidates[0].finish_reason is None
    assert chunks[-1].usage_metadata.candidates_token_count == 15


async def test_stream_uses_crlf_framing(sim: ProviderSimulator) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    assert response.text.startswith("data: {")
    assert response.text.endswith("}\r\n\r\n")


async def test_function_calls_thinking_and_usage(gemini_client: Any, sim: ProviderSimulator) -> None:
    from google.genai import types

    reply = Reply(
        reasoning="Need the weather tool.",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"})],
        usage=Usage(input_tokens=100, output_tokens=40, reasoning_tokens=30, cached_tokens=64),
    )
    sim.script("gemini", reply, model=MODEL)
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    response = await gemini_client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    assert response.function_calls[0].name == "get_weather"
    assert response.function_calls[0].args == {"city": "Paris"}
    assert response.function_calls[0].id is None  # Gemini sends no ids unless given
    parts = response.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text == "Need the weather tool."
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (100, 10, 30)
    assert usage.cached_content_token_count == 64


async def test_json_mode_with_schema(gemini_client: Any) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema={"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "n": {"type": "INTEGER"}}},
    )
    response = await gemini_client.models.generate_content(model=MODEL, contents="JSON please", config=config)
    assert response.parsed == {"city": "simulated", "n": 0}


async def test_max_output_tokens_gives_max_tokens(gemini_client: Any) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(max_output_tokens=1)
    response = await gemini_client.models.generate_content(model=MODEL, contents="Hello Gemini", config=config)
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text == "Simu"


async def test_embed_content_batch(gemini_client: Any, sim: ProviderSimulator) -> None:
    from google.genai import types

    result = await gemini_client.models.embed_content(
        model="gemini-embedding-001",
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=32),
    )
    assert [len(e.values) for e in result.embeddings] == [32, 32]
    assert result.embeddings[0].values != result.embeddings[1].values
    assert sim.last_request().path.endswith(":batchEmbedContents")


async def test_embed_content_single_route(sim: ProviderSimulator) -> None:
    body = {"content": {"parts": [{"text": "hello"}]}}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post("/v1beta/models/text-embedding-004:embedContent", json=body)
    assert len(response.json()["embedding"]["values"]) == 768


async def test_count_tokens(gemini_client: Any) -> None:
    result = await gemini_client.models.count_tokens(model=MODEL, contents="Hello Gemini, count me")
    assert result.total_tokens == 6


async def test_models_list_and_get(gemini_client: Any, sim: ProviderSimulator) -> None:
    names = [m.name async for m in await gemini_client.models.list()]
    assert f"models/{MODEL}" in names
    model = await gemini_client.models.get(model=MODEL)
    assert model.display_name == "Gemini 2.5 Flash"
    assert model.input_token_limit == 1_048_576
    # google-genai 3.x uses /v1 by default; those calls must reach the Gemini routes, not OpenAI's.
    assert {r.vendor for r in sim.requests} == {"gemini"}


async def test_v1beta_api_version(sim: ProviderSimulator, genai_factory: Any) -> None:
    client = genai_factory(sim.gemini_base_url, api_version="v1beta")
    try:
        response = await client.aio.models.generate_content(model=MODEL, contents="beta?")
        names = [m.name async for m in await client.aio.models.list()]
    finally:
        await client.aio.aclose()
    assert response.text == "Simulated reply to: beta?"
    assert names
    assert all(r.path.startswith("/v1beta/") for r in sim.requests)


async def test_httpx2_transport(sim: ProviderSimulator, genai_factory: Any) -> None:
    async with httpx2.AsyncClient() as http:
        client = genai_factory(sim.gemini_base_url, httpx_async_client=http)
        response = await client.aio.models.generate_content(model=MODEL, contents="over httpx2")
        chunks = [c async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="streamed")]
    assert response.text == "Simulated reply to: over httpx2"
    assert "".join(c.text for c in chunks) == "Simulated reply to: streamed"
