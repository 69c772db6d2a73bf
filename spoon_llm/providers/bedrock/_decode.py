"""Converse response mapping: a Converse JSON body, or ConverseStream events, -> our normalised response.

Text and tool calls are kept apart; ``reasoningContent`` text becomes ``reasoning``; server-tool blocks
(``toolUse`` with ``"type": "server_tool_use"`` and their results) stay out of ``tool_calls`` and are listed in
``metadata["server_tool_calls"]``. When a turn holds blocks that must go back verbatim next turn (reasoning with
its signature, redacted reasoning, server-tool blocks) the raw content is kept in
``metadata["provider_data"]["bedrock"]["content"]`` for ``to_message()``. A guardrail's trace is kept in
``metadata["trace"]``; ``guardrail_intervened`` maps to the finish reason ``content_filter``.

Usage: Bedrock's ``inputTokens`` leaves out cache reads and writes (``totalTokens`` counts them); ours counts the
whole prompt, as billed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...types import FinishReason, FunctionCall, LLMResponse, LLMResponseChunk, TokenUsage, ToolCall
from .._stream import StreamAccumulator

__all__ = ["ConverseStreamDecoder", "decode_converse", "map_stop_reason", "usage_from"]

PROVIDER = "bedrock"

_STOP_REASONS = {
    "end_turn": FinishReason.STOP.value,
    "stop_sequence": FinishReason.STOP.value,
    "max_tokens": FinishReason.LENGTH.value,
    "model_context_window_exceeded": FinishReason.LENGTH.value,
    "tool_use": FinishReason.TOOL_CALLS.value,
    "guardrail_intervened": FinishReason.CONTENT_FILTER.value,
    "content_filtered": FinishReason.CONTENT_FILTER.value,
}
_SERVER_TOOL = "server_tool_use"


def map_stop_reason(native: str | None) -> str | None:
    """Our finish reason for Converse's ``stopReason`` (unknown values map to ``other``)."""
    if native is None:
        return None
    return _STOP_REASONS.get(native, FinishReason.OTHER.value) if isinstance(native, str) else FinishReason.OTHER.value


def usage_from(raw: Mapping[str, Any] | None) -> TokenUsage | None:
    """Our usage from Converse's: input counts cache reads and writes too."""
    if not raw:
        return None
    read = raw.get("cacheReadInputTokens") or 0
    write = raw.get("cacheWriteInputTokens") or 0
    prompt = (raw.get("inputTokens") or 0) + read + write
    output = raw.get("outputTokens") or 0
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=raw.get("totalTokens") or prompt + output,
        cached_input_tokens=read,
        cache_write_tokens=write,
        raw=dict(raw),
    )


def _dump(value: Any) -> str:
    if not value:
        return "{}"
    return json.dumps(value, ensure_ascii=False)


def _server_call(tool_use: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": tool_use.get("toolUseId"), "name": tool_use.get("name"), "type": tool_use.get("type"),
            "input": tool_use.get("input")}


def decode_converse(data: Mapping[str, Any], *, request_id: str | None = None) -> LLMResponse:
    """Our :class:`LLMResponse` from a Converse JSON body."""
    message = (data.get("output") or {}).get("message") or {}
    content = message.get("content") or []
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    server_calls: list[dict[str, Any]] = []
    keep_raw = False
    for block in content:
        if "text" in block:
            text.append(block["text"] or "")
        elif "toolUse" in block:
            use = block["toolUse"]
            if use.get("type") == _SERVER_TOOL:
                server_calls.append(_server_call(use))
                keep_raw = True
            else:
                function = FunctionCall(name=use.get("name") or "", arguments=_dump(use.get("input")))
                calls.append(ToolCall(id=use.get("toolUseId"), function=function))
        else:
            keep_raw = True
            reasoning_block = block.get("reasoningContent")
            if isinstance(reasoning_block, Mapping):
                reasoning_text = reasoning_block.get("reasoningText")
                if isinstance(reasoning_text, Mapping):
                    reasoning.append(reasoning_text.get("text") or "")
    metadata: dict[str, Any] = {}
    if server_calls:
        metadata["server_tool_calls"] = server_calls
    if keep_raw:
        metadata["provider_data"] = {PROVIDER: {"content": list(content)}}
    for key in ("trace", "additionalModelResponseFields", "metrics"):
        if data.get(key):
            metadata[key] = data[key]
    native = data.get("stopReason")
    if native is not None and not isinstance(native, str):
        native = str(native)  # a malformed answer: keep the vendor's value as text
    return LLMResponse(
        content="".join(text),
        provider=PROVIDER,
        finish_reason=map_stop_reason(native),
        native_finish_reason=native,
        tool_calls=calls,
        usage=usage_from(data.get("usage")),
        reasoning="".join(reasoning) if reasoning else None,
        metadata=metadata,
        request_id=request_id,
    )


class _Block:
    """One streamed content block, kept to rebuild the raw content when it must travel back."""

    __slots__ = ("kind", "start", "pieces", "signature", "redacted")

    def __init__(self, kind: str, start: Mapping[str, Any] | None = None) -> None:
        self.kind = kind  # text, tool, server, reasoning
        self.start = dict(start or {})
        self.pieces: list[str] = []
        self.signature: str | None = None
        self.redacted: str | None = None

    def raw(self) -> dict[str, Any]:
        joined = "".join(self.pieces)
        if self.kind == "text":
            return {"text": joined}
        if self.kind in ("tool", "server"):
            use = dict(self.start)
            try:
                use["input"] = json.loads(joined) if joined.strip() else {}
            except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
                use["input"] = {}
            return {"toolUse": use}
        if self.redacted is not None:
            return {"reasoningContent": {"redactedContent": self.redacted}}
        inner: dict[str, Any] = {"text": joined}
        if self.signature is not None:
            inner["signature"] = self.signature
        return {"reasoningContent": {"reasoningText": inner}}


class ConverseStreamDecoder:
    """Feeds ConverseStream events into a :class:`StreamAccumulator`; returns the chunk to yield, if any.

    ``done`` turns true at ``messageStop``; usage arrives in the ``metadata`` event that follows it.
    """

    def __init__(self, acc: StreamAccumulator) -> None:
        self.acc = acc
        self.done = False
        self._blocks: dict[int, _Block] = {}
        self._keep_raw = False

    def feed(self, event_type: str | None, event: Mapping[str, Any]) -> LLMResponseChunk | None:
        """Apply one decoded event; returns a chunk for text, reasoning and tool-call progress, else None."""
        if event_type == "contentBlockDelta":
            index = event.get("contentBlockIndex", 0)
            delta = event.get("delta") or {}
            if "text" in delta:
                piece = delta["text"] or ""
                self._block(index, "text").pieces.append(piece)
                return self.acc.text(piece)
            if "toolUse" in delta:
                partial = (delta["toolUse"] or {}).get("input") or ""
                block = self._block(index, "tool")
                block.pieces.append(partial)
                if block.kind == "server":
                    return None
                return self.acc.tool_delta(index, arguments=partial)
            if "reasoningContent" in delta:
                self._keep_raw = True
                reasoning = delta["reasoningContent"] or {}
                block = self._block(index, "reasoning")
                if "signature" in reasoning:
                    block.signature = (block.signature or "") + (reasoning["signature"] or "")
                if "redactedContent" in reasoning:
                    block.redacted = (block.redacted or "") + (reasoning["redactedContent"] or "")
                if reasoning.get("text"):
                    block.pieces.append(reasoning["text"])
                    return self.acc.reasoning(reasoning["text"])
            return None
        if event_type == "contentBlockStart":
            index = event.get("contentBlockIndex", 0)
            start = event.get("start") or {}
            use = start.get("toolUse")
            if isinstance(use, Mapping):
                if use.get("type") == _SERVER_TOOL:
                    self._keep_raw = True
                    self._blocks[index] = _Block("server", use)
                    return None
                self._blocks[index] = _Block("tool", use)
                return self.acc.tool_delta(index, id=use.get("toolUseId"), name=use.get("name"))
            self._keep_raw = True  # other starts (server tool results...) only travel back raw
            return None
        if event_type == "messageStop":
            native = event.get("stopReason")
            self.acc.set_finish(native, map_stop_reason(native))
            if event.get("additionalModelResponseFields"):
                self.acc.metadata["additionalModelResponseFields"] = event["additionalModelResponseFields"]
            self.done = True
            return None
        if event_type == "metadata":
            self.acc.set_usage(usage_from(event.get("usage")))
            for key in ("trace", "metrics"):
                if event.get(key):
                    self.acc.metadata[key] = event[key]
            return None
        return None  # messageStart, contentBlockStop and event types added later

    def _block(self, index: int, kind: str) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block(kind)
        return block

    def finish(self) -> None:
        """Record the metadata known only at the end (raw content, server-tool calls)."""
        server = [self._blocks[i] for i in sorted(self._blocks) if self._blocks[i].kind == "server"]
        if server:
            self.acc.metadata["server_tool_calls"] = [_server_call(b.raw()["toolUse"]) for b in server]
        if self._keep_raw:
            content = [self._blocks[i].raw() for i in sorted(self._blocks)]
            self.acc.metadata["provider_data"] = {PROVIDER: {"content": content}}
