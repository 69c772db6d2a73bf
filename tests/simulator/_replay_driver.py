"""Drive a recorded conformance case through the official SDK pointed at the simulator.

Returns what the SDK reports, in the corpus' ``expected`` vocabulary, so tests can compare.
"""

from __future__ import annotations

import json
from typing import Any

from spoon_llm.testing import ConformanceCase, ProviderSimulator


def _args(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            return value
    return value if value is not None else {}


async def _openai_family(case: ConformanceCase, client: Any) -> dict[str, Any]:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    body = case.request["body"]
    stream = case.is_stream or body.get("stream") is True
    model = body.get("model", "m")
    path = case.request["path"]
    if path.endswith("/embeddings"):
        result = await client.embeddings.create(model=model, input=body.get("input", ""))
        return {"n_embeddings": len(result.data)}
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        if stream:
            chunks = [c async for c in await client.completions.create(model=model, prompt="p", stream=True)]
            text = "".join(c.choices[0].text for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
            return {"text": text, "finish_reason": finish[-1] if finish else None}
        completion = await client.completions.create(model=model, prompt="p")
        return {"text": completion.choices[0].text, "finish_reason": completion.choices[0].finish_reason}
    messages = [{"role": "user", "content": "replayed"}]
    if stream:
        state = ChatCompletionStreamState()
        async for chunk in await client.chat.completions.create(model=model, messages=messages, stream=True):
            state.handle_chunk(chunk)
        completion = state.current_completion_snapshot
    else:
        completion = await client.chat.completions.create(model=model, messages=messages)
    choice = next(c for c in completion.choices if c.index == 0)
    usage = completion.usage
    return {
        "text": choice.message.content or "",
        "finish_reason": choice.finish_reason,
        "tool_calls": [
            {"id": t.id, "name": t.function.name, "arguments": _args(t.function.arguments)}
            for t in (choice.message.tool_calls or [])
        ],
        "input_tokens": usage.prompt_tokens if usage else None,
        "output_tokens": usage.completion_tokens if usage else None,
    }


async def _anthropic(case: ConformanceCase, client: Any) -> dict[str, Any]:
    # The replayed answer does not depend on the request; a current model name avoids SDK deprecation warnings.
    kwargs = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "replayed"}],
    }
    if case.is_stream or case.request["body"].get("stream") is True:
        async with client.messages.stream(**kwargs) as stream:
            message = await stream.get_final_message()
    else:
        message = await client.messages.create(**kwargs)
    return {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "finish_reason": message.stop_reason,
        "tool_calls": [
            {"id": b.id, "name": b.name, "arguments": b.input} for b in message.content if b.type == "tool_use"
        ],
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
    }


async def _gemini(case: ConformanceCase, client: Any) -> dict[str, Any]:
    path = case.request["path"]
    model = path.split("/models/", 1)[1].split(":", 1)[0]
    if "mbedContent" in path:
        result = await client.models.embed_content(model=model, contents=["replayed"])
        return {"n_embeddings": len(result.embeddings)}
    if case.is_stream or ":streamGenerateContent" in path:
        chunks = [c async for c in await client.models.generate_content_stream(model=model, contents="replayed")]
    else:
        chunks = [await client.models.generate_content(model=model, contents="replayed")]
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    finish = usage = None
    for chunk in chunks:
        if chunk.candidates:
            candidate = chunk.candidates[0]
            for part in candidate.content.parts if candidate.content and candidate.content.parts else []:
                if part.text is not None and not part.thought:
                    text.append(part.text)
                if part.function_call:
                    call = part.function_call
                    calls.append({"id": call.id, "name": call.name, "arguments": call.args or {}})
            if candidate.finish_reason:
                finish = candidate.finish_reason.value
        if chunk.usage_metadata:
            usage = chunk.usage_metadata
    return {
        "text": "".join(text),
        "finish_reason": finish,
        "tool_calls": calls,
        "input_tokens": usage.prompt_token_count if usage else None,
        "output_tokens": usage.candidates_token_count if usage else None,
    }


async def _responses(case: ConformanceCase, client: Any) -> dict[str, Any]:
    """The Responses API through ``client.responses.create``: a stream's last ``response`` object and its deltas."""
    body = case.request["body"]
    model = body.get("model", "m")
    if case.is_stream:
        text: list[str] = []
        response: Any = None
        async for event in await client.responses.create(model=model, input="replayed", stream=True):
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            if getattr(event, "response", None) is not None:
                response = event.response
        content = "".join(text)
    else:
        response = await client.responses.create(model=model, input="replayed")
        content = response.output_text
    usage = response.usage
    return {
        "text": content,
        "finish_reason": response.status,
        "tool_calls": [{"id": item.call_id, "name": item.name, "arguments": _args(item.arguments)}
                       for item in response.output if item.type == "function_call"],
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
    }


async def replay_through_sdk(case: ConformanceCase, sim: ProviderSimulator, clients: dict[str, Any]) -> dict[str, Any]:
    """Queue ``case`` on ``sim`` and return what the vendor's SDK makes of the replayed answer."""
    sim.replay(case)
    if case.provider == "anthropic":
        return await _anthropic(case, clients["anthropic"])
    if case.provider == "gemini":
        return await _gemini(case, clients["gemini"])
    if case.provider == "openai_responses":
        return await _responses(case, clients["openai_responses"])
    return await _openai_family(case, clients[case.provider])


def expected_view(case: ConformanceCase, got: dict[str, Any]) -> dict[str, Any]:
    """The corpus' expected values for the keys ``got`` has."""
    expected = case.expected
    out: dict[str, Any] = {}
    for key in got:
        if key in ("input_tokens", "output_tokens"):
            out[key] = (expected.get("usage") or {}).get(key)
        elif key == "tool_calls":
            out[key] = [
                {"id": t["id"], "name": t["name"], "arguments": t["arguments"]} for t in expected.get(key) or []
            ]
        else:
            out[key] = expected.get(key)
    return out
