"""The Anthropic front: Messages API bodies to manager calls, answers back to Anthropic's JSON and event stream.

An Anthropic request is translated into the normalised conversation (system prompt, text, images, documents,
tool calls and results, thinking) so that any backend can serve it; what has no normalised form (server tools,
images inside tool results for a backend other than Anthropic) is a 400 naming it. Answers from the Anthropic
provider keep their raw content blocks (thinking signatures included); answers from other backends are rebuilt as
blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..types import LLMResponse, LLMResponseChunk, TokenUsage
from ._openai_api import bad, require_model

__all__ = ["AnthropicStream", "MessagesCall", "parse_count_tokens", "parse_messages", "render_message"]

logger = logging.getLogger("spoon_llm.server")

_KNOWN = frozenset({"model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences",
                    "stream", "tools", "tool_choice", "thinking", "metadata", "output_config", "cache_control"})
# Service hints of the Messages API: sent on to an Anthropic backend, meaningless to any other.
_NATIVE_ONLY = frozenset({"service_tier", "speed", "inference_geo", "diagnostics", "user_profile_id", "workspace_id"})
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_NATIVE_STOPS = frozenset({"end_turn", "max_tokens", "tool_use", "stop_sequence", "pause_turn", "refusal"})


@dataclass(slots=True)
class MessagesCall:
    """One Messages request, ready for the manager."""

    model: str
    messages: list[dict[str, Any]]
    kwargs: dict[str, Any]
    stream: bool = False


def _source_part(block: Mapping[str, Any], kind: str) -> dict[str, Any]:
    source = block.get("source")
    if type(source) is not dict:
        raise bad(f"a {kind} block needs a 'source' object", "messages")
    stype = source.get("type")
    part: dict[str, Any]
    if stype == "base64":
        part = {"type": kind, "data": source.get("data"), "media_type": source.get("media_type")}
    elif stype == "url":
        part = {"type": kind, "url": source.get("url")}
    elif stype == "text" and kind == "document":
        return {"type": "text", "text": source.get("data") or ""}
    else:
        raise bad(f"{kind} source type {stype!r} cannot be translated (use base64 or url)", "messages")
    if kind == "document" and part.get("media_type") is None:
        part.pop("media_type")
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _part(block: Any) -> dict[str, Any]:
    if type(block) is not dict:
        raise bad("content blocks must be objects", "messages")
    kind = block.get("type")
    if kind == "text":
        part = {"type": "text", "text": block.get("text") or ""}
        if block.get("cache_control") is not None:
            part["cache_control"] = block["cache_control"]
        return part
    if kind == "image" or kind == "document":
        return _source_part(block, kind)
    raise bad(f"content block type {kind!r} cannot be translated here", "messages")


def _tool_result_content(content: Any, native: bool) -> str | list[dict[str, Any]]:
    """A tool_result's content: text joined, or (Anthropic backends) parts that go back as the same blocks."""
    if content is None or type(content) is str:
        return content or ""
    if type(content) is not list:
        raise bad("tool_result content must be a string or an array of content blocks", "messages")
    text_only = all(type(block) is dict and block.get("type") == "text" for block in content)
    if text_only and not (native and any(block.get("cache_control") is not None for block in content)):
        return "".join(block.get("text") or "" for block in content)
    if not native:
        # Other backends take only text in a tool result.
        raise bad("only text can be translated inside a tool_result for this model's backend", "messages")
    return [_part(block) for block in content]


def _tool_result(block: dict[str, Any], native: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"role": "tool", "tool_call_id": block.get("tool_use_id"),
                              "content": _tool_result_content(block.get("content"), native)}
    data: dict[str, Any] = {}
    if block.get("is_error"):
        data["is_error"] = True
    if block.get("cache_control") is not None:
        # Read by the Anthropic provider only (the breakpoint goes back on the tool_result block).
        data["anthropic"] = {"cache_control": block["cache_control"]}
    if data:
        result["provider_data"] = data
    return result


def _turn(message: Any, out: list[dict[str, Any]], native: bool) -> None:
    if type(message) is not dict:
        raise bad("each message must be an object", "messages")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise bad(f"message role must be 'user' or 'assistant', not {role!r}", "messages")
    content = message.get("content")
    if type(content) is str:
        out.append({"role": role, "content": content})
        return
    if type(content) is not list:
        raise bad("message content must be a string or an array of blocks", "messages")
    parts: list[dict[str, Any]] = []
    if role == "assistant":
        calls = []
        thinking = []
        for block in content:
            kind = block.get("type") if type(block) is dict else None
            if kind == "tool_use":
                calls.append({"id": block.get("id"), "type": "function", "function": {
                    "name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
            elif kind == "thinking":
                text = block.get("thinking") or ""
                if type(text) is not str:
                    raise bad("a thinking block's 'thinking' must be a string", "messages")
                thinking.append(text)
            elif kind == "redacted_thinking":
                continue
            else:
                parts.append(_part(block))
        turn: dict[str, Any] = {"role": "assistant", "content": parts or None}
        if calls:
            turn["tool_calls"] = calls
        if thinking:
            turn["reasoning"] = "".join(thinking)
        if any(type(b) is dict and b.get("type") in ("thinking", "redacted_thinking") for b in content):
            # The Anthropic provider sends the blocks back as received (thinking signatures must survive).
            turn["provider_data"] = {"anthropic": {"content": content}}
        out.append(turn)
        return
    for block in content:
        if type(block) is dict and block.get("type") == "tool_result":
            out.append(_tool_result(block, native))
        else:
            parts.append(_part(block))
    if parts:
        out.append({"role": "user", "content": parts})


def _system(system: Any) -> dict[str, Any] | None:
    if system is None or system == "":
        return None
    if type(system) is str:
        return {"role": "system", "content": system}
    if type(system) is list:
        return {"role": "system", "content": [_part(block) for block in system]}
    raise bad("'system' must be a string or an array of text blocks", "system")


def _tools(tools: Any) -> list[dict[str, Any]]:
    if type(tools) is not list:
        raise bad("'tools' must be an array", "tools")
    out = []
    for tool in tools:
        if type(tool) is not dict or "input_schema" not in tool or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if type(tool) is dict else None
            raise bad(f"tool {kind or tool!r} cannot be translated: only custom tools with an input_schema are "
                      "served", "tools")
        function: dict[str, Any] = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        if tool.get("cache_control") is not None:
            # The flat ToolSpec form: every provider reads it, and only those with cache breakpoints send this one
            # (OpenAI's wrapped form is sent to OpenAI-compatible backends as it is).
            out.append({**function, "cache_control": tool["cache_control"]})
        else:
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, kwargs: dict[str, Any]) -> None:
    if type(choice) is not dict:
        raise bad("'tool_choice' must be an object", "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        kwargs["tool_choice"] = "auto"
    elif kind == "any":
        kwargs["tool_choice"] = "required"
    elif kind == "none":
        kwargs["tool_choice"] = "none"
    elif kind == "tool":
        kwargs["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        raise bad(f"tool_choice type {kind!r} is not known", "tool_choice")
    if choice.get("disable_parallel_tool_use") and "tools" in kwargs:
        kwargs["parallel_tool_calls"] = False


def _output_config(config: Any, kwargs: dict[str, Any]) -> None:
    """``output_config``: ``effort`` and a JSON-schema ``format`` have portable equivalents; nothing else does."""
    if config is None:
        return
    if type(config) is not dict:
        raise bad("'output_config' must be an object", "output_config")
    for key, value in config.items():
        if key == "effort":
            kwargs["reasoning_effort"] = value
        elif key == "format" and type(value) is dict and value.get("type") == "json_schema":
            kwargs["json_schema"] = value.get("schema")
        else:
            raise bad(f"output_config.{key} cannot be translated", "output_config")


def _conversation(body: Mapping[str, Any], native: bool) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if type(messages) is not list or not messages:
        raise bad("'messages' must be a non-empty array", "messages")
    out: list[dict[str, Any]] = []
    system = _system(body.get("system"))
    if system is not None:
        out.append(system)
    for message in messages:
        _turn(message, out, native)
    return out


def parse_messages(body: Any, *, native: bool) -> MessagesCall:
    """``POST /v1/messages`` body -> :class:`MessagesCall`.

    ``native`` says the route's first backend is Anthropic: ``thinking`` then travels as it is; other backends
    have no portable equivalent of a thinking budget, so it is not sent to them.
    """
    if type(body) is not dict:
        raise bad("the request body must be a JSON object")
    hints: dict[str, Any] = {}
    for key in body:
        if key in _NATIVE_ONLY:
            hints[key] = body[key]
        elif key not in _KNOWN:
            raise bad(f"field {key!r} is not supported by this gateway", key)
    model = require_model(body)
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise bad("'max_tokens' is required and must be a positive integer", "max_tokens")
    kwargs: dict[str, Any] = {"max_tokens": max_tokens}
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            kwargs[key] = body[key]
    if body.get("stop_sequences"):
        kwargs["stop"] = body["stop_sequences"]
    if body.get("tools"):
        kwargs["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], kwargs)
    thinking = body.get("thinking")
    if native and type(thinking) is dict and thinking.get("type") != "disabled":
        kwargs["thinking"] = thinking
    _output_config(body.get("output_config"), kwargs)
    if native:
        if body.get("cache_control") is not None:
            kwargs["cache_control"] = body["cache_control"]
        if hints:
            kwargs["extra_body"] = hints
    metadata = body.get("metadata")
    if type(metadata) is dict and type(metadata.get("user_id")) is str:
        kwargs["user"] = metadata["user_id"]
    stream = body.get("stream")
    if stream is not None and type(stream) is not bool:
        raise bad("'stream' must be a boolean", "stream")
    return MessagesCall(model, _conversation(body, native), kwargs, stream is True)


def parse_count_tokens(body: Any) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]:
    """``POST /v1/messages/count_tokens`` body -> ``(model, conversation, tools)``."""
    if type(body) is not dict:
        raise bad("the request body must be a JSON object")
    model = require_model(body)
    tools = _tools(body["tools"]) if body.get("tools") else None
    # Counting sends nothing to a backend: every form the Anthropic provider would take is counted.
    return model, _conversation(body, True), tools


# -- answers --------------------------------------------------------------------------------------------------


def usage_json(usage: TokenUsage | None) -> dict[str, int]:
    """Usage in Anthropic's fields: ``input_tokens`` excludes cache reads and writes, which are listed apart."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0}
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    return {"input_tokens": max(0, usage.input_tokens - cached - written), "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": written}


def _stop_reason(native: str | None, normalised: str | None, provider: str) -> str:
    if provider == "anthropic" and native in _NATIVE_STOPS:
        return native
    return _STOP.get(normalised or "stop", "end_turn")


def _stop_sequence(stop: str, metadata: Mapping[str, Any]) -> str | None:
    """The stop sequence matched (the Anthropic decoder keeps it in the metadata), with that stop reason only."""
    if stop != "stop_sequence":
        return None
    sequence = metadata.get("stop_sequence")
    return sequence if type(sequence) is str else None


def _arguments(raw: str) -> Any:
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        # Arguments cut short (the output limit) or malformed: the members that were complete, as the event
        # stream's clients parse them, and the stop reason tells the client the answer is incomplete.
        return _partial_object(raw)


def _partial_object(raw: str) -> dict[str, Any]:
    """The complete members of a JSON object cut off in the middle (``{}`` when there are none)."""
    closers: list[str] = []
    cuts: list[tuple[int, str]] = []  # the text up to a comma outside strings, and what closes it there
    in_string = escaped = False
    for i, char in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{" or char == "[":
            closers.append("}" if char == "{" else "]")
        elif (char == "}" or char == "]") and closers:
            closers.pop()
        elif char == ",":
            cuts.append((i, "".join(reversed(closers))))
            if len(cuts) > 3:  # the last few are enough: the one before the cut-off member parses
                del cuts[0]
    candidates = [raw + "".join(reversed(closers))] if not in_string else []
    candidates += [raw[:i] + closing for i, closing in reversed(cuts)]
    for text in candidates:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if type(value) is dict:
            return value
    return {}


def _raw_blocks(response: LLMResponse) -> list[Any] | None:
    data = response.metadata.get("provider_data")
    vendor = data.get("anthropic") if isinstance(data, dict) else None
    content = vendor.get("content") if isinstance(vendor, dict) else None
    return content if isinstance(content, list) else None


def render_message(response: LLMResponse, request_id: str, model: str) -> bytes:
    """An Anthropic ``message`` object for ``response``."""
    content = _raw_blocks(response) if response.provider == "anthropic" else None
    if content is None:
        content = []
        if response.reasoning:
            content.append({"type": "thinking", "thinking": response.reasoning, "signature": ""})
        if response.content:
            content.append({"type": "text", "text": response.content})
        for i, call in enumerate(response.tool_calls):
            content.append({"type": "tool_use", "id": call.id or f"toolu_{request_id}_{i}",
                            "name": call.function.name, "input": _arguments(call.function.arguments)})
    stop = _stop_reason(response.native_finish_reason, response.finish_reason, response.provider)
    return orjson.dumps({
        "id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": response.model or model,
        "content": content, "stop_reason": stop, "stop_sequence": _stop_sequence(stop, response.metadata),
        "usage": usage_json(response.usage),
    })


def _event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


class _ToolBlock:
    """One tool call's ``tool_use`` block in the stream: its content index and the input sent so far."""

    __slots__ = ("block", "arguments", "held")

    def __init__(self) -> None:
        self.block = -1  # not started
        self.arguments = ""
        self.held = ""  # fragments that arrived before the call's name


class AnthropicStream:
    """Turns manager stream chunks into the Messages event stream.

    ``message_start`` (usage with an input-token estimate; the exact usage follows in ``message_delta``),
    ``ping``, one content block per run of text or thinking (``content_block_start`` / ``_delta`` / ``_stop``),
    each tool call as a ``tool_use`` block whose ``input_json_delta`` fragments go out as they arrive (what a
    backend settles only at the end goes out with the final chunk), ``message_delta`` with ``stop_reason`` and
    usage, then ``message_stop``.
    """

    __slots__ = ("_request_id", "_model", "_estimate", "_index", "_open", "_text_head", "_tools")

    def __init__(self, request_id: str, model: str, input_estimate: int) -> None:
        self._request_id = request_id
        self._model = model
        self._estimate = input_estimate
        self._index = -1
        self._open: str | None = None
        self._text_head = b""
        self._tools: dict[int, _ToolBlock] | None = None

    def start(self) -> bytes:
        """``message_start`` and a ``ping``."""
        message: dict[str, Any] = {
            "id": f"msg_{self._request_id}", "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._estimate, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 0}}
        return (_event(b"message_start", orjson.dumps({"type": "message_start", "message": message}))
                + _event(b"ping", b'{"type":"ping"}'))

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event(b"content_block_stop",
                      b'{"type":"content_block_stop","index":' + str(self._index).encode() + b"}")

    def _begin(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        index = str(self._index).encode()
        self._text_head = b'{"type":"content_block_delta","index":' + index + b',"delta":'
        return out + _event(b"content_block_start", b'{"type":"content_block_start","index":' + index
                            + b',"content_block":' + orjson.dumps(block) + b"}")

    def chunk(self, chunk: LLMResponseChunk) -> bytes | None:
        """The events for one manager chunk (``None`` when it carries nothing to send)."""
        kind = chunk.kind
        if kind == "text":
            if not chunk.delta:
                return None
            out = b"" if self._open == "text" else self._begin("text", {"type": "text", "text": ""})
            return out + _event(b"content_block_delta", self._text_head + b'{"type":"text_delta","text":'
                                + orjson.dumps(chunk.delta) + b"}}")
        if kind == "reasoning":
            if chunk.reasoning_delta:
                out = b"" if self._open == "thinking" else self._begin(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                return out + _event(b"content_block_delta", self._text_head
                                    + b'{"type":"thinking_delta","thinking":' + orjson.dumps(chunk.reasoning_delta)
                                    + b"}}")
            signature = chunk.metadata.get("signature")  # the Anthropic decoder's closing chunk of a thinking block
            if type(signature) is not str or not signature:
                return None
            out = b"" if self._open == "thinking" else self._begin(
                "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            return out + _event(b"content_block_delta", self._text_head + b'{"type":"signature_delta","signature":'
                                + orjson.dumps(signature) + b"}}")
        if kind == "final":
            return self.final(chunk)
        if kind == "tool" and chunk.tool_calls and chunk.tool_call_index is not None:
            call = chunk.tool_calls[0]
            return self._tool(chunk.tool_call_index, call.id, call.function.name, call.function.arguments) or None
        return None

    def _tool(self, index: int, call_id: str | None, name: str, fragment: str) -> bytes:
        tools = self._tools
        if tools is None:
            tools = self._tools = {}
        tool = tools.get(index)
        if tool is None:
            tool = tools[index] = _ToolBlock()
        out = b""
        if tool.block < 0:
            if not name:  # a tool_use block opens with its name: hold fragments until it is known
                tool.held += fragment
                return b""
            out = self._begin("tool_use", {"type": "tool_use", "id": call_id or f"toolu_{self._request_id}_{index}",
                                           "name": name, "input": {}})
            tool.block = self._index
            fragment, tool.held = tool.held + fragment, ""
        elif self._open != "tool_use" or tool.block != self._index:
            # Its block was closed by another one (calls interleaved): a closed block takes no more input.
            logger.warning("tool call %d of a stream continued after its block closed; the rest is dropped", index)
            return b""
        if not fragment:
            return out
        tool.arguments += fragment
        return out + _event(b"content_block_delta", self._text_head + b'{"type":"input_json_delta",'
                            b'"partial_json":' + orjson.dumps(fragment) + b"}}")

    def final(self, chunk: LLMResponseChunk) -> bytes:
        """The rest of the tool input, ``message_delta`` with the stop reason and usage, ``message_stop``."""
        parts = []
        tools = self._tools or {}
        for index, call in enumerate(chunk.tool_calls):
            arguments = call.function.arguments or "{}"
            tool = tools.get(index)
            if tool is None or tool.block < 0:
                parts.append(self._tool(index, call.id, call.function.name, arguments))
            elif arguments.startswith(tool.arguments) and len(arguments) > len(tool.arguments):
                parts.append(self._tool(index, call.id, call.function.name, arguments[len(tool.arguments):]))
        parts.append(self._close())
        stop = _stop_reason(chunk.native_finish_reason, chunk.finish_reason, chunk.provider)
        parts.append(_event(b"message_delta", orjson.dumps({
            "type": "message_delta", "delta": {"stop_reason": stop,
                                               "stop_sequence": _stop_sequence(stop, chunk.metadata)},
            "usage": usage_json(chunk.usage)})))
        parts.append(_event(b"message_stop", b'{"type":"message_stop"}'))
        return b"".join(parts)

    @staticmethod
    def error(body: bytes) -> bytes:
        """An ``error`` event (the stream ends after it)."""
        return _event(b"error", body)
