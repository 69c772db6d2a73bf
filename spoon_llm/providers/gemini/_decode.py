"""Gemini response mapping: ``generateContent`` REST JSON (camelCase), or its stream chunks, -> our response.

Works on plain decoded JSON (no SDK objects), so every transport shares it. Text is returned unaltered (no
fence stripping); thought parts (``thought: true``) become ``reasoning``; ``functionCall`` parts become tool
calls, their ``thoughtSignature`` kept in ``ToolCall.provider_data["gemini"]``; when the turn holds parts
that must go back verbatim (signatures, thoughts, code execution, server-side tool invocations) the merged
parts are kept in ``metadata["provider_data"]["gemini"]["parts"]`` for ``to_message()``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ...types import FinishReason, FunctionCall, LLMResponse, LLMResponseChunk, TokenUsage, ToolCall
from .._stream import StreamAccumulator
from ._convert import SYNTHETIC_PREFIX

__all__ = ["StreamDecoder", "decode_embeddings", "decode_response", "enum_name", "map_finish_reason", "usage_from"]

PROVIDER = "gemini"

_FILTERED = FinishReason.CONTENT_FILTER.value
_FINISH_REASONS = {
    "STOP": FinishReason.STOP.value,
    "MAX_TOKENS": FinishReason.LENGTH.value,
    "SAFETY": _FILTERED,
    "RECITATION": _FILTERED,
    "BLOCKLIST": _FILTERED,
    "PROHIBITED_CONTENT": _FILTERED,
    "SPII": _FILTERED,
    "IMAGE_SAFETY": _FILTERED,
    "IMAGE_PROHIBITED_CONTENT": _FILTERED,
    "IMAGE_RECITATION": _FILTERED,
    "MODEL_ARMOR": _FILTERED,
    "MALFORMED_FUNCTION_CALL": FinishReason.ERROR.value,
    "UNEXPECTED_TOOL_CALL": FinishReason.ERROR.value,
    "TOO_MANY_TOOL_CALLS": FinishReason.ERROR.value,
}
# Vertex AI sends enums as numbers when asked for ``$alt=json;enum-encoding=int`` (google-cloud-aiplatform's REST
# transport does): Candidate.FinishReason and PromptFeedback.BlockedReason of aiplatform v1/v1beta1, by number.
_FINISH_NAMES = ("FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "BLOCKLIST",
                 "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL", "MODEL_ARMOR", "IMAGE_SAFETY",
                 "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "UNEXPECTED_TOOL_CALL", "NO_IMAGE")
_BLOCK_NAMES = ("BLOCKED_REASON_UNSPECIFIED", "SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT")
# Parts whose plain content rebuilds exactly from the response fields; anything else must travel back raw.
_PLAIN_KEYS = frozenset({"text"})


def enum_name(value: Any, names: tuple[str, ...]) -> str | None:
    """A ``finishReason``/``blockReason`` as its name: numbers (``enum-encoding=int``) looked up, names kept."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return str(value)


def map_finish_reason(native: str | None, has_tool_calls: bool = False) -> str | None:
    """Our finish reason for Gemini's ``finishReason`` (``STOP`` with function calls -> ``tool_calls``)."""
    if native is None:
        return None
    if native == "STOP" and has_tool_calls:
        return FinishReason.TOOL_CALLS.value
    return _FINISH_REASONS.get(native, FinishReason.OTHER.value)


def usage_from(raw: Mapping[str, Any] | None) -> TokenUsage | None:
    """Our usage from ``usageMetadata``: output includes thoughts, as billed."""
    if not raw:
        return None
    prompt = raw.get("promptTokenCount") or 0
    thoughts = raw.get("thoughtsTokenCount") or 0
    output = (raw.get("candidatesTokenCount") or 0) + thoughts
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=raw.get("totalTokenCount") or prompt + output,
        cached_input_tokens=raw.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
        raw=dict(raw),
    )


def new_call_id() -> str:
    """An id for a function call the API sent without one (never sent back to Gemini)."""
    return SYNTHETIC_PREFIX + uuid.uuid4().hex[:16]


def _tool_call(part: Mapping[str, Any], call: Mapping[str, Any]) -> ToolCall:
    args = call.get("args")
    vendor: dict[str, Any] = {}
    if part.get("thoughtSignature"):
        vendor["thoughtSignature"] = part["thoughtSignature"]
    return ToolCall(
        id=call.get("id") or new_call_id(),
        function=FunctionCall(name=call.get("name") or "", arguments=json.dumps(args, ensure_ascii=False)
                              if args else "{}"),
        provider_data={PROVIDER: vendor} if vendor else None,
    )


def _metadata(data: Mapping[str, Any], candidate: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if data.get("responseId"):
        metadata["response_id"] = data["responseId"]
    feedback = data.get("promptFeedback")
    if feedback:
        metadata["prompt_feedback"] = feedback
        if feedback.get("blockReason"):
            metadata["block_reason"] = enum_name(feedback["blockReason"], _BLOCK_NAMES)
    if candidate:
        for ours, theirs in (("safety_ratings", "safetyRatings"), ("citation_metadata", "citationMetadata"),
                             ("grounding_metadata", "groundingMetadata"), ("finish_message", "finishMessage"),
                             ("url_context_metadata", "urlContextMetadata")):
            if candidate.get(theirs):
                metadata[ours] = candidate[theirs]
    candidates = data.get("candidates")
    if candidates and len(candidates) > 1:
        metadata["n_candidates"] = len(candidates)
    return metadata


def _first_candidate(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    candidates = data.get("candidates")
    if not candidates:
        return None
    for candidate in candidates:
        if candidate.get("index", 0) == 0:
            return candidate  # type: ignore[no-any-return]
    return None


def decode_response(data: Mapping[str, Any], *, request_id: str | None = None,
                    provider: str = PROVIDER) -> LLMResponse:
    """Our :class:`LLMResponse` from a ``generateContent`` JSON body (candidate 0)."""
    candidate = _first_candidate(data)
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    parts: list[Any] = []
    keep_raw = False
    native = None
    if candidate is not None:
        native = enum_name(candidate.get("finishReason"), _FINISH_NAMES)
        parts = (candidate.get("content") or {}).get("parts") or []
        for part in parts:
            value = part.get("text")
            if value is not None:
                (thoughts if part.get("thought") else text).append(value)
            call = part.get("functionCall")
            if call is not None:
                calls.append(_tool_call(part, call))
            if not keep_raw and (part.keys() - _PLAIN_KEYS):
                keep_raw = True
    metadata = _metadata(data, candidate)
    if keep_raw:
        metadata["provider_data"] = {PROVIDER: {"parts": list(parts)}}
    finish = map_finish_reason(native, bool(calls))
    if finish is None and metadata.get("block_reason"):
        finish = _FILTERED
    return LLMResponse(
        content="".join(text),
        provider=provider,
        model=data.get("modelVersion") or "",
        finish_reason=finish,
        native_finish_reason=native,
        tool_calls=calls,
        usage=usage_from(data.get("usageMetadata")),
        reasoning="".join(thoughts) if thoughts else None,
        metadata=metadata,
        request_id=request_id,
    )


class StreamDecoder:
    """Feeds Gemini stream chunks (each a partial ``GenerateContentResponse``) into a :class:`StreamAccumulator`.

    Text and thought parts become deltas; function calls arrive whole and each becomes one tool call; usage
    and finish reason are the last ones seen. Streamed text parts are merged for the preserved raw parts.
    """

    def __init__(self, acc: StreamAccumulator) -> None:
        self.acc = acc
        self.chunks = 0
        self._parts: list[dict[str, Any]] = []
        self._keep_raw = False
        self._calls = 0
        self._usage: Mapping[str, Any] | None = None
        self._native: str | None = None
        self._last: Mapping[str, Any] = {}
        self._feedback: Any = None
        self._candidate: Mapping[str, Any] | None = None

    def feed(self, data: Mapping[str, Any]) -> list[LLMResponseChunk]:
        """Apply one chunk; returns the chunks to yield (text, reasoning, tool calls)."""
        self.chunks += 1
        self._last = data
        out: list[LLMResponseChunk] = []
        if data.get("usageMetadata"):
            self._usage = data["usageMetadata"]
        if data.get("modelVersion"):
            self.acc.model = data["modelVersion"]
        if data.get("promptFeedback"):
            self._feedback = data["promptFeedback"]
        candidate = _first_candidate(data)
        if candidate is None:
            return out
        self._candidate = candidate
        for part in (candidate.get("content") or {}).get("parts") or ():
            value = part.get("text")
            thought = bool(part.get("thought"))
            if value is not None:
                if value:
                    out.append(self.acc.reasoning(value) if thought else self.acc.text(value))
                self._merge_text(part, value, thought)
            else:
                self._parts.append(part)
            call = part.get("functionCall")
            if call is not None:
                tool = _tool_call(part, call)
                out.append(self.acc.tool_delta(("gemini", self._calls), id=tool.id, name=tool.function.name,
                                               arguments=tool.function.arguments, provider_data=tool.provider_data))
                self._calls += 1
            if not self._keep_raw and (part.keys() - _PLAIN_KEYS):
                self._keep_raw = True
        if candidate.get("finishReason") is not None:
            self._native = enum_name(candidate["finishReason"], _FINISH_NAMES)
        return out

    @property
    def complete(self) -> bool:
        """True once the stream said it is over: a finish reason, or a prompt block with no candidate."""
        return self._native is not None or bool(self._feedback and self._feedback.get("blockReason"))

    def _merge_text(self, part: Mapping[str, Any], value: str, thought: bool) -> None:
        last = self._parts[-1] if self._parts else None
        if (last is not None and "text" in last and bool(last.get("thought")) == thought
                and "thoughtSignature" not in last and part.keys() <= {"text", "thought", "thoughtSignature"}):
            last["text"] += value
            if part.get("thoughtSignature"):
                last["thoughtSignature"] = part["thoughtSignature"]
        else:
            self._parts.append(dict(part))

    def finish(self) -> None:
        """Record finish reason, usage and the metadata known only at the end."""
        self.acc.set_finish(self._native, map_finish_reason(self._native, self._calls > 0))
        self.acc.set_usage(usage_from(self._usage))
        last = {**self._last, "promptFeedback": self._feedback} if self._feedback else self._last
        metadata = _metadata(last, self._candidate)
        if self.acc.finish_reason is None and metadata.get("block_reason"):
            self.acc.finish_reason = _FILTERED
        self.acc.metadata.update(metadata)
        if self._keep_raw:
            self.acc.metadata["provider_data"] = {PROVIDER: {"parts": self._parts}}


def decode_embeddings(data: Mapping[str, Any]) -> list[list[float]]:
    """The vectors of a ``batchEmbedContents`` (or ``embedContent``) JSON body, in input order."""
    embeddings = data.get("embeddings")
    if embeddings is None and data.get("embedding") is not None:
        embeddings = [data["embedding"]]
    return [list(item.get("values") or ()) for item in embeddings or ()]
