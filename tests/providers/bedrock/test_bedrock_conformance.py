"""Replay every recorded Bedrock interaction of the shared corpus through BedrockProvider (native transport).

For each file: the recorded request body is mapped back to our messages and keyword arguments (Converse:
:func:`converse_call`, InvokeModel: :func:`invoke_call`), the provider sends it, signed, over a real socket to the
simulator, which answers with the recorded response (JSON, or the recorded frames re-encoded as a binary event
stream); the normalised result must equal ``expected`` and the request the simulator received must equal the
recorded one.

Known request differences, documented rather than hidden:

* Equivalent spellings are normalised before comparing (:func:`normalise`): ``"system": []`` and
  ``"inferenceConfig": {}`` (what pydantic-ai sends) vs. leaving them out (what we send), Anthropic string content
  vs. one text block.
* Fields our typed arguments do not produce travel as ``extra_body`` and are compared like the rest:
  ``additionalModelRequestFields``, ``guardrailConfig``, ``outputConfig`` (the recorded schema strings keep the
  recorder's own key order), and Anthropic ``anthropic_version``/``top_k``.
* Blocks our message schema has no type for (video, ``guardContent``, JSON tool results, server-tool blocks,
  reasoning) travel in ``Message.provider_data["bedrock"]["content"]``, as a response's ``to_message()`` carries
  them, and go out verbatim.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from spoon_llm.errors import ProviderError, error_for_status
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase
from spoon_llm.types import (
    DocumentPart,
    ImagePart,
    LLMResponse,
    LLMResponseChunk,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "bedrock").glob("*.json")) if ROOT is not None else []
_CACHE = {"type": "ephemeral"}
_CONVERSE_TYPED = {"messages", "system", "inferenceConfig", "toolConfig"}
_ANTHROPIC_TYPED = {"messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "tools"}
# Exactly what the Bedrock Runtime API returns for these error types on each status (the corpus has 400s only).
_RETRYABLE_STATUSES = {408, 429, 500, 503}


class Unrepresentable(Exception):
    """The recorded block has no counterpart in our message schema."""


def model_of(case: ConformanceCase) -> str:
    """The model id from ``/model/{id}/{operation}``."""
    return unquote(case.request["path"].split("/")[2])


# -- Converse ---------------------------------------------------------------------------------------------


def _converse_parts(blocks: list[dict[str, Any]]) -> list[Any]:
    parts: list[Any] = []
    for block in blocks:
        if "cachePoint" in block:
            if not parts:
                raise Unrepresentable("cachePoint first")
            parts[-1] = parts[-1].model_copy(update={"cache_control": _CACHE})
        elif "text" in block:
            parts.append(TextPart(text=block["text"]))
        elif "image" in block and "bytes" in block["image"]["source"]:
            image = block["image"]
            parts.append(ImagePart(data=image["source"]["bytes"], media_type=f"image/{image['format']}"))
        elif "document" in block and "bytes" in block["document"]["source"]:
            doc = block["document"]
            media = {"txt": "text/plain", "pdf": "application/pdf", "csv": "text/csv", "md": "text/markdown",
                     "html": "text/html"}[doc["format"]]
            parts.append(DocumentPart(data=doc["source"]["bytes"], media_type=media, filename=doc["name"]))
        else:
            raise Unrepresentable(str(next(iter(block))))
    return parts


def _user_messages(blocks: list[dict[str, Any]]) -> list[Message]:
    messages: list[Message] = []
    pending: list[dict[str, Any]] = []
    for block in blocks:
        if "toolResult" not in block:
            pending.append(block)
            continue
        if pending:
            messages.append(Message(role="user", content=_converse_parts(pending)))
            pending = []
        result = block["toolResult"]
        if set(result) - {"toolUseId", "content", "status"}:
            raise Unrepresentable("toolResult field")
        content = result["content"]
        value: Any = content[0]["text"] if len(content) == 1 and set(content[0]) == {"text"} else \
            _converse_parts(content)
        data = {"bedrock": {"is_error": True}} if result.get("status") == "error" else None
        messages.append(Message(role="tool", tool_call_id=result["toolUseId"], content=value, provider_data=data))
    if pending:
        messages.append(Message(role="user", content=_converse_parts(pending)))
    return messages


def _assistant(blocks: list[dict[str, Any]]) -> Message:
    text = "".join(b["text"] for b in blocks if "text" in b)
    calls = [ToolCall.create(b["toolUse"]["name"], b["toolUse"].get("input") or {}, id=b["toolUse"]["toolUseId"])
             for b in blocks if "toolUse" in b and b["toolUse"].get("type") != "server_tool_use"]
    rebuildable = [b for b in blocks if "text" in b] + [b for b in blocks if "toolUse" in b]
    plain = rebuildable == blocks and all(set(b["toolUse"]) == {"toolUseId", "name", "input"}
                                          for b in blocks if "toolUse" in b)
    data = None if plain and sum("text" in b for b in blocks) <= 1 else {"bedrock": {"content": blocks}}
    return Message(role="assistant", content=text or None, tool_calls=calls or None, provider_data=data)


def converse_call(case: ConformanceCase) -> tuple[list[Message], dict[str, Any]]:
    """Our messages and keyword arguments for a recorded Converse body."""
    body = case.request["body"]
    messages: list[Message] = []
    if body.get("system"):
        messages.append(Message(role="system", content=_converse_parts(body["system"])))
    for turn in body["messages"]:
        blocks = turn["content"]
        if turn["role"] == "assistant":
            messages.append(_assistant(blocks))
            continue
        try:
            messages.extend(_user_messages(blocks))
        except Unrepresentable:
            text = "".join(b["text"] for b in blocks if "text" in b)
            messages.append(Message(role="user", content=text, provider_data={"bedrock": {"content": blocks}}))
    kwargs: dict[str, Any] = {"model": model_of(case)}
    inference = body.get("inferenceConfig") or {}
    for ours, theirs in (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP"),
                         ("stop", "stopSequences")):
        if theirs in inference:
            kwargs[ours] = inference[theirs]
    if "toolConfig" in body:
        config = body["toolConfig"]
        tools: list[Any] = []
        for entry in config["tools"]:
            if "cachePoint" in entry:
                tools[-1] = tools[-1].model_copy(update={"cache_control": _CACHE})
            elif "toolSpec" in entry:
                spec = entry["toolSpec"]
                tools.append(ToolSpec(name=spec["name"], description=spec.get("description"),
                                      parameters=spec["inputSchema"]["json"], strict=spec.get("strict")))
            else:
                tools.append(entry)
        kwargs["tools"] = tools
        choice = config.get("toolChoice")
        if choice is not None:
            kwargs["tool_choice"] = "auto" if "auto" in choice else "required" if "any" in choice else \
                choice["tool"]["name"]
    extra = {k: v for k, v in body.items() if k not in _CONVERSE_TYPED}
    if extra:
        kwargs["extra_body"] = extra
    return messages, kwargs


# -- InvokeModel (Anthropic bodies) -----------------------------------------------------------------------


def _anthropic_parts(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block["type"] != "text":
            raise Unrepresentable(block["type"])
        parts.append(TextPart(text=block["text"], cache_control=block.get("cache_control")))
    return parts


def invoke_call(case: ConformanceCase) -> tuple[list[Message], dict[str, Any]]:
    """Our messages and keyword arguments for a recorded InvokeModel (Anthropic Messages) body."""
    body = case.request["body"]
    messages: list[Message] = []
    if "system" in body:
        messages.append(Message(role="system", content=_anthropic_parts(body["system"])))
    for turn in body["messages"]:
        content = turn["content"]
        if turn["role"] == "assistant" and isinstance(content, list):
            text = "".join(b["text"] for b in content if b["type"] == "text")
            calls = [ToolCall.create(b["name"], b["input"], id=b["id"]) for b in content if b["type"] == "tool_use"]
            messages.append(Message(role="assistant", content=text or None, tool_calls=calls or None))
        elif isinstance(content, list) and any(b["type"] == "tool_result" for b in content):
            for block in content:
                messages.append(Message(role="tool", tool_call_id=block["tool_use_id"],
                                        content=_anthropic_parts(block["content"])))
        else:
            messages.append(Message(role=turn["role"], content=_anthropic_parts(content)))
    kwargs: dict[str, Any] = {"api": "invoke", "model": model_of(case), "max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p", "tools"):
        if key in body:
            kwargs[key] = body[key]
    if "stop_sequences" in body:
        kwargs["stop"] = body["stop_sequences"]
    extra = {k: v for k, v in body.items() if k not in _ANTHROPIC_TYPED}
    if extra:
        kwargs["extra_body"] = extra
    return messages, kwargs


# -- comparison -------------------------------------------------------------------------------------------


def _blocks(content: Any) -> Any:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded or sent body with equivalent spellings made equal."""
    out = {k: v for k, v in body.items() if v not in ([], {})}
    if "anthropic_version" in out:  # Anthropic format: string content is one text block
        if "system" in out:
            out["system"] = _blocks(out["system"])
        out["messages"] = [{**turn, "content": [
            {**b, "content": _blocks(b["content"])} if b.get("type") == "tool_result" else b
            for b in _blocks(turn["content"])]} for turn in out["messages"]]
    return out


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or place ../shared/conformance)"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


async def _run(provider: Any, stream: bool, messages: list[Message], kwargs: dict[str, Any]
               ) -> tuple[LLMResponse, list[str] | None]:
    if not stream:
        return await provider.chat(messages, **kwargs), None
    deltas: list[str] = []

    async def tap() -> AsyncIterator[LLMResponseChunk]:
        async for chunk in provider.chat_stream(messages, **kwargs):
            if chunk.kind == "text":
                deltas.append(chunk.delta)
            yield chunk

    return await collect_stream(tap()), deltas


def check_response(response: LLMResponse, expected: dict[str, Any], deltas: list[str] | None) -> None:
    """The provider's normalised answer against the corpus' ``expected``."""
    assert response.provider == "bedrock"
    assert response.content == expected["text"]
    if deltas is not None:
        assert "".join(deltas) == expected["text"]
    got_calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    assert got_calls == [{k: v for k, v in c.items() if k in ("id", "name", "arguments")}
                         for c in expected["tool_calls"]]
    assert response.native_finish_reason == expected["finish_reason"]
    assert response.reasoning == expected.get("reasoning_text")
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
        if "total_tokens" in usage:
            assert ours.total_tokens == usage["total_tokens"]
    if "server_tool_calls" in expected:
        got = [{k: c[k] for k in ("id", "name", "type")} for c in response.metadata["server_tool_calls"]]
        assert got == expected["server_tool_calls"]
    else:
        assert "server_tool_calls" not in response.metadata


@pytest.mark.parametrize("path", _cases())
async def test_recorded_interaction(path: Path, sim: ProviderSimulator, make_provider: Any) -> None:
    case = ConformanceCase.from_file(path)
    operation = case.request["path"].rsplit("/", 1)[1]
    invoke = operation.startswith("invoke")
    stream = operation.endswith("stream")
    messages, kwargs = (invoke_call if invoke else converse_call)(case)
    provider = await make_provider()
    sim.replay(case)
    expected = case.expected

    if case.kind == "error":
        with pytest.raises(ProviderError) as info:
            await _run(provider, stream, messages, kwargs)
        error = info.value
        assert isinstance(error, error_for_status(expected["status"]))
        assert error.status_code == expected["status"]
        assert error.error_type == expected.get("error_type")
        assert error.message == expected["message"]
        assert error.retryable == (expected["status"] in _RETRYABLE_STATUSES)
    else:
        response, deltas = await _run(provider, stream, messages, kwargs)
        check_response(response, expected, deltas)

    sent = sim.requests_for("bedrock", "chat")
    assert len(sent) == 1
    assert sent[0].path == case.request["path"]
    assert sent[0].stream == stream
    assert normalise(sent[0].body) == normalise(case.request["body"])
