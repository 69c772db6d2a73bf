"""Replay every recorded Anthropic interaction of the shared corpus through AnthropicProvider.

For each file: the recorded request body is mapped back to our messages and keyword arguments
(:func:`to_call`), the provider sends it through the real SDK over a real socket to the simulator, which answers
with the recorded response; the normalised result must equal ``expected`` and the request the simulator
received must equal the recorded one on the fields the API cares about.

Known request differences, documented rather than hidden:

* Equivalent spellings are normalised before comparing (:func:`normalise_request`): a string content vs. one
  text block, consecutive turns of one role vs. one merged turn, ``is_error: false`` vs. no flag.
* One recording (``tools__pydantic-ai__test_tool_availability_portability...``) puts a ``system``-role turn
  holding a ``tool_addition`` block inside ``messages``; our schema sends system messages to ``system``, so
  that request cannot be expressed: it is sent through ``extra_body`` and only its response is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spoon_llm.errors import ProviderError, error_for_status
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase
from spoon_llm.types import DocumentPart, ImagePart, LLMResponse, LLMResponseChunk, Message, TextPart, ToolCall

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "anthropic").glob("*.json")) if ROOT is not None else []

# Body fields our provider sets from typed arguments; the rest of a recorded body travels as extra_body.
_TYPED = {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "thinking", "temperature", "top_p",
          "top_k", "stop_sequences", "stream", "metadata"}
# Block types our message schema carries natively; others come back only through provider_data.
_USER_BLOCKS = {"text", "image", "document", "tool_result"}


class Unrepresentable(Exception):
    """The recorded request uses a shape our message schema cannot express."""


def _parts(blocks: list[dict[str, Any]]) -> list[Any]:
    parts: list[Any] = []
    for block in blocks:
        kind = block.get("type")
        cache = {"cache_control": block["cache_control"]} if "cache_control" in block else {}
        if kind == "text":
            parts.append(TextPart(text=block["text"], **cache))
        elif kind in ("image", "document"):
            source = block["source"]
            cls = ImagePart if kind == "image" else DocumentPart
            extra = {"filename": block["title"]} if kind == "document" and block.get("title") else {}
            if source["type"] == "base64":
                parts.append(cls(data=source["data"], media_type=source["media_type"], **cache, **extra))
            elif source["type"] == "url":
                parts.append(cls(url=source["url"], **cache, **extra))
            else:
                raise Unrepresentable(f"{kind} source {source['type']}")
        else:
            raise Unrepresentable(f"user block {kind}")
    return parts


def _representable(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    if kind == "tool_result":
        inner = block.get("content")
        return isinstance(inner, str) or inner is None or all(_representable(b) for b in inner)
    if kind in ("image", "document"):
        return block["source"]["type"] in ("base64", "url")
    return kind in _USER_BLOCKS


def to_call(body: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
    """Our messages and keyword arguments for a recorded ``/v1/messages`` body."""
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, str):
        messages.append(Message.system(system))
    elif isinstance(system, list):
        messages.append(Message(role="system", content=_parts(system)))
    for turn in body["messages"]:
        role, content = turn["role"], turn["content"]
        if role not in ("user", "assistant"):
            raise Unrepresentable(f"role {role}")
        if isinstance(content, str):
            messages.append(Message(role=role, content=content))
            continue
        if role == "assistant":
            text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            calls = [ToolCall.create(b["name"], b.get("input") or {}, id=b["id"])
                     for b in content if b.get("type") == "tool_use"]
            plain = all(b.get("type") in ("text", "tool_use") and set(b) <= {"type", "text", "id", "name", "input"}
                        for b in content)
            data = None if plain else {"anthropic": {"content": content}}
            texts = [b for b in content if b.get("type") == "text"]
            if plain and (len(texts) > 1 or (calls and content[0].get("type") != "text" and texts)):
                data = {"anthropic": {"content": content}}  # several text blocks, or text after a call
            messages.append(Message(role="assistant", content=text or None, tool_calls=calls or None,
                                    provider_data=data))
            continue
        if not all(_representable(b) for b in content):
            text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            messages.append(Message(role="user", content=text, provider_data={"anthropic": {"content": content}}))
            continue
        pending: list[dict[str, Any]] = []
        for block in content:
            if block.get("type") == "tool_result":
                if pending:
                    messages.append(Message(role="user", content=_parts(pending)))
                    pending = []
                result = block.get("content", "")
                value: Any = result if isinstance(result, str) else _parts(result)
                vendor = {k: block[k] for k in ("is_error", "cache_control") if block.get(k)}
                data = {"anthropic": vendor} if vendor else None
                messages.append(Message(role="tool", tool_call_id=block["tool_use_id"], content=value,
                                        provider_data=data))
            elif block.get("type") in _USER_BLOCKS:
                pending.append(block)
            else:
                raise Unrepresentable(f"user block {block.get('type')}")
        if pending:
            messages.append(Message(role="user", content=_parts(pending)))
    kwargs: dict[str, Any] = {"model": body["model"], "max_tokens": body["max_tokens"]}
    for key in ("tools", "tool_choice", "thinking", "temperature", "top_p", "top_k", "metadata"):
        if key in body:
            kwargs[key] = body[key]
    if "stop_sequences" in body:
        kwargs["stop"] = body["stop_sequences"]
    extra = {k: v for k, v in body.items() if k not in _TYPED}
    if extra:
        kwargs["extra_body"] = extra
    return messages, kwargs


def _norm_content(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def normalise_request(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded or sent body with equivalent spellings made equal (string vs one text block)."""
    out = {k: v for k, v in body.items() if k != "stream"}
    if "system" in out:
        out["system"] = _norm_content(out["system"])
    turns = []
    for turn in body["messages"]:
        content = []
        for block in _norm_content(turn["content"]):
            if block.get("type") == "tool_result":
                block = {k: v for k, v in block.items() if not (k == "is_error" and v is False)}
                if isinstance(block.get("content"), str):
                    block["content"] = _norm_content(block["content"])
            content.append(block)
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] += content
        else:
            turns.append({"role": turn["role"], "content": content})
    out["messages"] = turns
    return out


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or place ../shared/conformance)"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


async def _run(provider: Any, case: ConformanceCase, messages: list[Message], kwargs: dict[str, Any]
               ) -> tuple[LLMResponse, list[str] | None]:
    """Call the provider as the recording did; a stream is folded back into one response plus its deltas."""
    if not case.request["body"].get("stream"):
        return await provider.chat(messages, **kwargs), None
    deltas: list[str] = []

    async def tap() -> AsyncIterator[LLMResponseChunk]:
        async for chunk in provider.chat_stream(messages, **kwargs):
            if chunk.kind == "text":
                deltas.append(chunk.delta)
            yield chunk

    return await collect_stream(tap()), deltas


def check_response(response: LLMResponse, expected: dict[str, Any], deltas: list[str] | None) -> None:
    assert response.content == expected["text"]
    if deltas is not None:
        assert "".join(deltas) == expected["text"]
    got_calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    assert got_calls == [{k: v for k, v in c.items() if k in ("id", "name", "arguments")}
                         for c in expected["tool_calls"]]
    assert response.native_finish_reason == expected["finish_reason"]
    usage = expected["usage"]
    if usage is None:
        assert response.usage is None
    else:
        ours = response.usage
        assert ours is not None
        assert ours.input_tokens - ours.cached_input_tokens - ours.cache_write_tokens == usage["input_tokens"]
        assert ours.output_tokens == usage["output_tokens"]
        assert ours.cached_input_tokens == usage.get("cached_input_tokens", 0)
        assert ours.cache_write_tokens == usage.get("cache_creation_input_tokens", 0)
    if "server_tool_calls" in expected:
        got = [{k: c[k] for k in ("id", "name", "type")} for c in response.metadata["server_tool_calls"]]
        assert got == expected["server_tool_calls"]
    else:
        assert "server_tool_calls" not in response.metadata


@pytest.mark.parametrize("path", _cases())
async def test_recorded_interaction(path: Path, sim: ProviderSimulator, make_provider: Any) -> None:
    case = ConformanceCase.from_file(path)
    body = case.request["body"]
    expected = case.expected
    try:
        messages, kwargs = to_call(body)
        representable = True
    except Unrepresentable:
        # Drive the provider with the recorded messages as a raw override; the response is still checked.
        messages, kwargs = [Message.user("x")], {"model": body["model"], "max_tokens": body["max_tokens"],
                                                 "extra_body": {k: v for k, v in body.items() if k != "stream"}}
        representable = False
    provider = await make_provider()
    sim.replay(case)
    stream = bool(body.get("stream"))

    if case.kind == "error":
        with pytest.raises(ProviderError) as info:
            await _run(provider, case, messages, kwargs)
        error = info.value
        assert isinstance(error, error_for_status(expected["status"]))
        assert error.status_code == expected["status"]
        assert error.error_type == expected.get("error_type")
        assert error.message == expected.get("message")
        assert error.retryable == (expected["status"] in (429, 500, 529))
    elif "stream_error" in expected:
        with pytest.raises(ProviderError) as info:
            await _run(provider, case, messages, kwargs)
        assert info.value.error_type == expected["stream_error"].get("type")
    else:
        response, deltas = await _run(provider, case, messages, kwargs)
        check_response(response, expected, deltas)
        assert response.reasoning == expected.get("reasoning_text")

    sent = sim.requests_for("anthropic", "chat")[0].body
    if representable:
        assert normalise_request(sent) == normalise_request(body)
    assert sent.get("stream", False) == stream

