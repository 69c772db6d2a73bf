"""Replay every recorded Responses API interaction of the shared corpus through OpenAIResponsesProvider.

For each file, on both transports: the recorded request body is mapped back to our messages and keyword
arguments (:func:`to_call`), the provider sends it over a real socket to the simulator (on the recorded path:
``/v1/responses``, or Azure's ``/openai/v1/responses``), which answers with the recorded response; the normalised
result must equal ``expected`` (text and stream deltas, tool calls, status, usage, reasoning, refusal, built-in
tool calls, incomplete reason; errors with status, type, code and message) and the request the simulator received
must equal the recorded one.

Equivalent spellings are normalised before the request comparison (:func:`normalise_request`): ``stream``
(sent only for streams, recorded as ``false`` by some clients), top-level ``null`` fields (we send nothing for
``None``, also inside a tool: ``"description": null``), ``"type": "message"`` on a role message that has no
item id, and a bare string ``input`` (one user message). Input items our schema lacks
(``file_id`` files, a developer message carrying ``tools``, output items of earlier turns such as reasoning
with encrypted content and hosted tool calls) travel as ``provider_data["openai_responses"]["items"]``, the
same way a response's own output goes back on the next turn, so every request is compared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spoon_llm.errors import ProviderError, error_for_status
from spoon_llm.providers.openai_responses._convert import KNOWN_KWARGS
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase
from spoon_llm.types import DocumentPart, ImagePart, LLMResponse, LLMResponseChunk, Message, TextPart, ToolCall

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "openai_responses").glob("*.json")) if ROOT is not None else []
VENDOR = "openai_responses"

_ROLES = ("system", "developer", "user", "assistant")
_SPEC_KEYS = {"type", "name", "description", "parameters", "strict"}
_PLAIN_CALL_KEYS = {"type", "call_id", "name", "arguments"}


class Unrepresentable(Exception):
    """An input shape our message schema cannot express (sent as raw items instead)."""


def _part(part: dict[str, Any]) -> Any:
    kind = part.get("type")
    if kind == "input_text" and set(part) == {"type", "text"}:
        return TextPart(text=part["text"])
    if kind == "input_image" and set(part) <= {"type", "image_url", "detail"} and part.get("image_url"):
        url = part["image_url"]
        extra = {"detail": part["detail"]} if part.get("detail") else {}
        if url.startswith("data:") and ";base64," in url:
            head, data = url.split(",", 1)
            return ImagePart(data=data, media_type=head[5:].split(";")[0], **extra)
        return ImagePart(url=url, **extra)
    if kind == "input_file" and "file_id" not in part and set(part) <= {"type", "file_url", "file_data", "filename"}:
        extra = {"filename": part["filename"]} if part.get("filename") else {}
        if "file_url" in part:
            return DocumentPart(url=part["file_url"], **extra)
        head, data = part["file_data"].split(",", 1)
        return DocumentPart(data=data, media_type=head[5:].split(";")[0], **extra)
    raise Unrepresentable(f"input part {part!r}")


def _content(content: Any) -> Any:
    return content if isinstance(content, str) else [_part(p) for p in content]


def _raw(items: list[dict[str, Any]], role: str = "assistant", **fields: Any) -> Message:
    return Message(role=role, provider_data={VENDOR: {"items": items}}, **fields)  # type: ignore[arg-type]


def _assistant_turn(items: list[dict[str, Any]]) -> Message:
    """Earlier output items as one assistant message: rebuilt from fields when they are plain calls."""
    calls = [ToolCall.create(i["name"], i.get("arguments") or "{}", id=i.get("call_id"))
             for i in items if i.get("type") == "function_call"]
    if all(i.get("type") == "function_call" and set(i) == _PLAIN_CALL_KEYS for i in items):
        return Message(role="assistant", tool_calls=calls)
    text = "".join(p.get("text", "") for i in items if i.get("type") == "message"
                   for p in i.get("content") or () if p.get("type") == "output_text")
    return _raw(items, content=text or None, tool_calls=calls or None)


def to_messages(body: dict[str, Any]) -> list[Message]:
    """Our messages for a recorded ``input``."""
    source = body["input"]
    if isinstance(source, str):
        return [Message.user(source)]
    messages: list[Message] = []
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            messages.append(_assistant_turn(list(pending)))
            pending.clear()

    for item in source:
        role, kind = item.get("role"), item.get("type")
        if role in _ROLES and "id" not in item and kind in (None, "message"):
            flush()
            try:
                if set(item) - {"role", "content", "type"}:
                    raise Unrepresentable(f"message fields {sorted(item)}")
                messages.append(Message(role=role, content=_content(item["content"])))
            except Unrepresentable:
                messages.append(_raw([item], role=role))
        elif kind == "function_call_output":
            flush()
            try:
                if set(item) != {"type", "call_id", "output"}:
                    raise Unrepresentable(f"output fields {sorted(item)}")
                messages.append(Message(role="tool", tool_call_id=item["call_id"], content=_content(item["output"])))
            except Unrepresentable:
                messages.append(_raw([item], role="user"))
        else:
            pending.append(item)
    flush()
    return messages


def _response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt.get("type") == "json_schema":  # Chat Completions' nested shape: the mapping flattens it back
        return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
    return dict(fmt)


def to_call(body: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
    """Our messages and keyword arguments for a recorded ``/responses`` body."""
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("input", "stream") or value is None:
            continue
        if key == "max_output_tokens":
            kwargs["max_tokens"] = value
        elif key == "reasoning":
            rest = {k: v for k, v in value.items() if k != "effort"}
            if "effort" in value:
                kwargs["reasoning_effort"] = value["effort"]
            if rest:
                kwargs["reasoning"] = rest
        elif key == "text":
            rest = {k: v for k, v in value.items() if k != "format"}
            if "format" in value:
                kwargs["response_format"] = _response_format(value["format"])
            if rest:
                kwargs["text"] = rest
        elif key == "tools":
            kwargs["tools"] = [
                {k: v for k, v in t.items() if k != "type"} if t.get("type") == "function" and set(t) <= _SPEC_KEYS
                else t for t in value
            ]
        elif key in KNOWN_KWARGS:
            kwargs[key] = value
        else:
            extra[key] = value
    if extra:
        kwargs["extra_body"] = extra
    return to_messages(body), kwargs


def normalise_request(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded or sent body with equivalent spellings made equal."""
    out = {k: v for k, v in body.items() if k != "stream" and v is not None}
    items = out.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if "tools" in out:
        out["tools"] = [{k: v for k, v in tool.items() if v is not None} for tool in out["tools"]]
    if isinstance(items, list):
        out["input"] = [
            {k: v for k, v in item.items() if k != "type"}
            if item.get("type") == "message" and "role" in item and "id" not in item else item
            for item in items
        ]
    return out


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or place ../shared/conformance)"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


async def _run(provider: Any, stream: bool, messages: list[Message], kwargs: dict[str, Any]
               ) -> tuple[LLMResponse, list[str] | None]:
    """Call the provider as the recording did; a stream is folded back into one response plus its deltas."""
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
    """Compare a normalised answer with the corpus' ``expected``."""
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
        assert ours.input_tokens == usage["input_tokens"]
        assert ours.output_tokens == usage["output_tokens"]
        assert ours.total_tokens == usage["total_tokens"]
        assert ours.cached_input_tokens == usage.get("cached_input_tokens", 0)
        assert ours.reasoning_tokens == usage.get("reasoning_tokens", 0)
    assert response.reasoning == expected.get("reasoning_text")
    assert response.refusal == expected.get("refusal")
    assert response.metadata.get("incomplete_reason") == expected.get("incomplete_reason")
    got_hosted = [{k: c[k] for k in ("id", "name", "type")} for c in response.metadata.get("server_tool_calls", ())]
    assert got_hosted == expected.get("server_tool_calls", [])


@pytest.mark.parametrize("path", _cases())
async def test_recorded_interaction(path: Path, sim: ProviderSimulator, make_provider: Any) -> None:
    case = ConformanceCase.from_file(path)
    body = case.request["body"]
    expected = case.expected
    messages, kwargs = to_call(body)
    base = sim.base_url + case.request["path"].rsplit("/responses", 1)[0]
    provider = await make_provider(base_url=base)
    sim.replay(case)
    stream = bool(body.get("stream"))

    if case.kind == "error":
        with pytest.raises(ProviderError) as info:
            await _run(provider, stream, messages, kwargs)
        error = info.value
        assert isinstance(error, error_for_status(expected["status"]))
        assert error.status_code == expected["status"]
        assert error.error_type == expected.get("error_type")
        assert error.error_code == expected.get("error_code")
        assert error.message == expected.get("message")
    elif "stream_error" in expected:
        with pytest.raises(ProviderError) as info:
            await _run(provider, stream, messages, kwargs)
        assert info.value.message == expected["stream_error"].get("message")
    else:
        response, deltas = await _run(provider, stream, messages, kwargs)
        check_response(response, expected, deltas)

    sent = sim.requests_for(VENDOR, "chat")
    assert len(sent) == 1
    assert sent[0].path == case.request["path"]
    assert normalise_request(sent[0].body) == normalise_request(body)
    assert sent[0].body.get("stream", False) == stream
