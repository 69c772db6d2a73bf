"""Anthropic response mapping: a Messages API JSON body, or its SSE events, -> our normalised response.

Works on plain decoded JSON (no SDK objects), so every transport shares it. Text and tool calls are kept
apart; thinking becomes ``reasoning``; server-tool blocks (``server_tool_use``, ``web_search_tool_result``...)
stay out of ``tool_calls`` and are listed in ``metadata["server_tool_calls"]``. When a turn holds blocks that
must go back verbatim next turn (thinking with signatures, redacted thinking, server-tool blocks, citations),
the raw content is kept in ``metadata["provider_data"]["anthropic"]["content"]`` for ``to_message()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ..._trusted import build_trusted
from ...types import FinishReason, FunctionCall, LLMResponse, LLMResponseChunk, TokenUsage, ToolCall
from .._stream import StreamAccumulator
from ._errors import error_from_body

__all__ = ["StreamDecoder", "decode_message", "map_stop_reason", "usage_from"]

PROVIDER = "anthropic"

_STOP_REASONS = {
    "end_turn": FinishReason.STOP.value,
    "stop_sequence": FinishReason.STOP.value,
    "max_tokens": FinishReason.LENGTH.value,
    "model_context_window_exceeded": FinishReason.LENGTH.value,
    "tool_use": FinishReason.TOOL_CALLS.value,
    "refusal": FinishReason.CONTENT_FILTER.value,
    "pause_turn": FinishReason.OTHER.value,
}
# Blocks that are plain text or our tool calls rebuild exactly from LLMResponse fields; any other block
# means the raw content has to travel back with the turn.
_REBUILDABLE = frozenset({"text", "tool_use"})
_SERVER_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})


#: The fields usage_from and decode_message set (``model_fields_set`` as the keyword calls would make it).
_USAGE_FIELDS = frozenset({"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                           "cache_write_tokens", "raw"})
_RESPONSE_FIELDS = frozenset({"content", "provider", "model", "finish_reason", "native_finish_reason", "tool_calls",
                              "usage", "reasoning", "metadata", "request_id"})


def map_stop_reason(native: str | None) -> str | None:
    """Our finish reason for Anthropic's ``stop_reason`` (unknown values map to ``other``)."""
    if native is None:
        return None
    return _STOP_REASONS.get(native, FinishReason.OTHER.value)


def usage_from(raw: Mapping[str, Any] | None) -> TokenUsage | None:
    """Our usage from Anthropic's: input counts cache reads and writes too, as billed."""
    if not raw:
        return None
    base = raw.get("input_tokens") or 0
    read = raw.get("cache_read_input_tokens") or 0
    write = raw.get("cache_creation_input_tokens") or 0
    output = raw.get("output_tokens") or 0
    total = base + read + write
    if type(total) is int and type(output) is int and type(read) is int and type(write) is int:
        # Plain ints (what Anthropic sends): nothing for validation to convert.
        return build_trusted(TokenUsage, {
            "input_tokens": total, "output_tokens": output, "total_tokens": total + output,
            "cached_input_tokens": read, "cache_write_tokens": write, "reasoning_tokens": 0, "raw": dict(raw),
        }, _USAGE_FIELDS)
    return TokenUsage(
        input_tokens=total,
        output_tokens=output,
        total_tokens=total + output,
        cached_input_tokens=read,
        cache_write_tokens=write,
        raw=dict(raw),
    )


def decode_message(data: Mapping[str, Any], *, request_id: str | None = None) -> LLMResponse:
    """Our :class:`LLMResponse` from a ``/v1/messages`` JSON body."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    server_calls: list[dict[str, Any]] = []
    keep_raw = False
    content = data.get("content") or []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
            if block.get("citations"):
                keep_raw = True
        elif kind == "tool_use":
            calls.append(ToolCall(
                id=block.get("id"),
                function=FunctionCall(name=block.get("name") or "", arguments=_dump(block.get("input"))),
            ))
        else:
            keep_raw = True
            if kind == "thinking":
                thinking.append(block.get("thinking") or "")
            elif kind in _SERVER_CALLS:
                server_calls.append(_server_call(block))
    metadata: dict[str, Any] = {}
    if data.get("id"):
        metadata["response_id"] = data["id"]
    if data.get("stop_sequence"):
        metadata["stop_sequence"] = data["stop_sequence"]
    if server_calls:
        metadata["server_tool_calls"] = server_calls
    if keep_raw:
        metadata["provider_data"] = {PROVIDER: {"content": list(content)}}
    native = data.get("stop_reason")
    model = data.get("model") or ""
    if type(model) is str and (native is None or type(native) is str) and (request_id is None
                                                                            or type(request_id) is str):
        # The vendor's values are of the fields' types and the rest is built here: nothing for validation to do.
        return build_trusted(LLMResponse, {
            "content": "".join(text), "provider": PROVIDER, "model": model, "finish_reason": map_stop_reason(native),
            "native_finish_reason": native, "tool_calls": calls, "usage": usage_from(data.get("usage")),
            "cost": None, "reasoning": "".join(thinking) if thinking else None, "refusal": None,
            "metadata": metadata, "request_id": request_id, "duration": 0.0, "timestamp": time.time(),
            "deployment": None, "attempts": [], "fallback_path": [], "parsed": None, "messages": None,
        }, _RESPONSE_FIELDS)
    return LLMResponse(
        content="".join(text),
        provider=PROVIDER,
        model=model,
        finish_reason=map_stop_reason(native),
        native_finish_reason=native,
        tool_calls=calls,
        usage=usage_from(data.get("usage")),
        reasoning="".join(thinking) if thinking else None,
        metadata=metadata,
        request_id=request_id,
    )


def _dump(value: Any) -> str:
    if not value:
        return "{}"
    return json.dumps(value, ensure_ascii=False)


def _server_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": block.get("id"), "name": block.get("name"), "type": block.get("type"),
            "input": block.get("input")}


class _Block:
    """One content block being streamed (kept only as far as needed to rebuild the raw content)."""

    __slots__ = ("start", "pieces", "json", "signature", "citations")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.pieces: list[str] = []
        self.json: list[str] = []
        self.signature: str | None = None
        self.citations: list[Any] | None = None

    def raw(self) -> dict[str, Any]:
        block = dict(self.start)
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + "".join(self.pieces)
            if self.citations is not None:
                block["citations"] = [*(block.get("citations") or []), *self.citations]
        elif kind == "thinking":
            block["thinking"] = block.get("thinking", "") + "".join(self.pieces)
            if self.signature is not None:
                block["signature"] = self.signature
        elif self.json:
            joined = "".join(self.json)
            try:
                block["input"] = json.loads(joined) if joined.strip() else {}
            except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
                block["input"] = {}
        return block


class StreamDecoder:
    """Feeds Anthropic stream events into a :class:`StreamAccumulator` and returns the chunks to yield.

    Usage starts from ``message_start.message.usage``; every non-null field of ``message_delta.usage``
    overrides it. An in-band ``error`` event raises the mapped error.
    """

    def __init__(self, acc: StreamAccumulator) -> None:
        self.acc = acc
        self.done = False
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _Block] = {}
        self._keep_raw = False
        self._server_calls: list[int] = []

    def feed(self, event: Mapping[str, Any]) -> LLMResponseChunk | None:
        """Apply one decoded event; returns a chunk for text, reasoning and tool-call progress, else None.

        A thinking block's ``signature_delta`` is a ``reasoning`` chunk with an empty ``reasoning_delta`` and
        ``metadata["signature"]``.
        """
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            dtype = delta.get("type")
            index = event.get("index", 0)
            if dtype == "text_delta":
                text = delta.get("text") or ""
                block = self._blocks.get(index)
                if block is not None:
                    block.pieces.append(text)
                return self.acc.text(text)
            if dtype == "input_json_delta":
                partial = delta.get("partial_json") or ""
                block = self._blocks.get(index)
                if block is not None:
                    block.json.append(partial)
                    if block.start.get("type") != "tool_use":
                        return None
                return self.acc.tool_delta(index, arguments=partial)
            if dtype == "thinking_delta":
                text = delta.get("thinking") or ""
                block = self._blocks.get(index)
                if block is not None:
                    block.pieces.append(text)
                return self.acc.reasoning(text)
            if dtype == "signature_delta":
                signature = delta.get("signature") or ""
                block = self._blocks.get(index)
                if block is not None:
                    block.signature = (block.signature or "") + signature
                if type(signature) is not str or not signature:
                    return None
                # A reasoning chunk without text (collectors skip it) so that a relay can pass the signature on;
                # the accumulated block keeps it for the final chunk's raw content.
                return self.acc._chunk(kind="reasoning", metadata={"signature": signature})
            if dtype == "citations_delta":
                block = self._blocks.get(index)
                if block is not None:
                    block.citations = [*(block.citations or []), delta.get("citation")]
                self._keep_raw = True
            return None
        if kind == "content_block_start":
            return self._start_block(event.get("index", 0), event.get("content_block") or {})
        if kind == "message_start":
            message = event.get("message") or {}
            self._usage.update(message.get("usage") or {})
            if message.get("model"):
                self.acc.model = message["model"]
            if message.get("id"):
                self.acc.metadata["response_id"] = message["id"]
            return None
        if kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason") is not None:
                native = delta["stop_reason"]
                self.acc.set_finish(native, map_stop_reason(native))
            if delta.get("stop_sequence"):
                self.acc.metadata["stop_sequence"] = delta["stop_sequence"]
            for key, value in (event.get("usage") or {}).items():
                if value is not None:
                    self._usage[key] = value
            return None
        if kind == "message_stop":
            self.done = True
            return None
        if kind == "error":
            raise error_from_body(None, event)
        return None  # ping, content_block_stop and event types added later

    def _start_block(self, index: int, block: dict[str, Any]) -> LLMResponseChunk | None:
        self._blocks[index] = _Block(block)
        kind = block.get("type")
        if kind == "tool_use":
            # The arguments arrive as input_json_delta fragments; ``input`` here is a placeholder ({}).
            return self.acc.tool_delta(index, id=block.get("id"), name=block.get("name"))
        if kind == "text":
            text = block.get("text") or ""
            if block.get("citations"):
                self._keep_raw = True
            return self.acc.text(text) if text else None
        self._keep_raw = True
        if kind == "thinking":
            text = block.get("thinking") or ""
            return self.acc.reasoning(text) if text else None
        if kind in _SERVER_CALLS:
            self._server_calls.append(index)
        return None

    def finish(self) -> None:
        """Record usage and the metadata known only at the end (raw content, server-tool calls); yields nothing."""
        self.acc.set_usage(usage_from(self._usage))
        for index, block in self._blocks.items():
            if block.start.get("type") == "tool_use" and not block.json and block.start.get("input"):
                # A server that sent the whole input up front and no fragments.
                self.acc.tool_delta(index, arguments=_dump(block.start["input"]))
        if self._server_calls:
            self.acc.metadata["server_tool_calls"] = [_server_call(self._blocks[i].raw()) for i in self._server_calls]
        if self._keep_raw:
            content = [self._blocks[i].raw() for i in sorted(self._blocks)]
            self.acc.metadata["provider_data"] = {PROVIDER: {"content": content}}
