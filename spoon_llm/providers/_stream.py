"""The one stream accumulator: providers translate vendor events into calls on it, it owns the state.

It keeps the text, reasoning, tool calls (argument fragments merged by the vendor's index), usage and finish
reason, builds each :class:`LLMResponseChunk`, and turns the whole stream into the same :class:`LLMResponse`
that ``chat`` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .._trusted import construct
from ..types import FunctionCall, LLMResponse, LLMResponseChunk, TokenUsage, ToolCall

__all__ = ["StreamAccumulator"]

# A chunk's fields with their defaults, in declaration order (the factories' fields are filled per chunk).
_TEMPLATE: dict[str, Any] = {name: None if info.default_factory is not None else info.default
                             for name, info in LLMResponseChunk.model_fields.items()}
#: The fields a final chunk is given (its ``__pydantic_fields_set__``).
_FINAL_FIELDS = ("provider", "model", "content", "request_id", "kind", "finish_reason", "native_finish_reason",
                 "tool_calls", "usage", "metadata")


def _unvalidated(values: dict[str, Any], fields_set: set[str]) -> LLMResponseChunk:
    """The chunk ``LLMResponseChunk(**given)`` would be, from all its ``values`` (known good) and the names given.

    Validating what the accumulator built itself cost about as much as the rest of a delta's decoding.
    """
    return construct(LLMResponseChunk, values, fields_set)


@dataclass
class _ToolBuilder:
    id: str | None = None
    name: str = ""
    fragments: list[str] = field(default_factory=list)
    provider_data: dict[str, Any] | None = None

    def build(self) -> ToolCall:
        arguments = "".join(self.fragments)
        return ToolCall(
            id=self.id,
            function=FunctionCall(name=self.name, arguments=arguments or "{}"),
            provider_data=self.provider_data,
        )


class StreamAccumulator:
    """Accumulates one streamed answer.

    Example (inside a provider)::

        acc = StreamAccumulator("openai", model)
        async for event in sdk_stream:
            if event.text:
                yield acc.text(event.text)
        yield acc.final_chunk()
        response = acc.to_response()
    """

    def __init__(self, provider: str, model: str = "") -> None:
        self.provider = provider
        self.model = model
        self.content = ""
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolBuilder] = {}
        self._slot_of_index: dict[Any, int] = {}
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.request_id: str | None = None
        self.refusal: str | None = None
        self.metadata: dict[str, Any] = {}
        self.chunk_count = 0

    def _chunk(self, **fields: Any) -> LLMResponseChunk:
        self.chunk_count += 1
        return LLMResponseChunk(
            provider=self.provider, model=self.model, content=self.content, request_id=self.request_id, **fields
        )

    def _delta_chunk(self, kind: str, key: str, value: Any) -> LLMResponseChunk:
        """A text or reasoning chunk, built without validation when its fields are of their types already."""
        model, request_id = self.model, self.request_id
        if type(value) is not str or type(model) is not str or (request_id is not None and type(request_id) is not str):
            return self._chunk(kind=kind, **{key: value})  # vendor data of another type: validated as before
        self.chunk_count += 1
        values = _TEMPLATE.copy()  # in field order, as validation leaves them (repr, iteration)
        values["kind"] = kind
        values[key] = value
        values["content"] = self.content
        values["provider"] = self.provider
        values["model"] = model
        values["tool_calls"] = []
        values["metadata"] = {}
        values["request_id"] = request_id
        return _unvalidated(values, {"kind", key, "content", "provider", "model", "request_id"})

    def text(self, delta: str) -> LLMResponseChunk:
        """Append text; returns the chunk to yield."""
        content = self.content = self.content + delta
        model, request_id = self.model, self.request_id
        if type(delta) is not str or type(model) is not str or (request_id is not None and type(request_id) is not str):
            return self._chunk(kind="text", delta=delta)  # vendor data of another type: validated as before
        # The most frequent chunk of all, spelled out: one dict display in field order (no template copy and
        # stores).
        self.chunk_count += 1
        return _unvalidated({
            "kind": "text", "delta": delta, "content": content, "reasoning_delta": "", "provider": self.provider,
            "model": model, "finish_reason": None, "native_finish_reason": None, "tool_calls": [],
            "tool_call_index": None, "usage": None, "metadata": {}, "request_id": request_id, "parsed": None},
            {"kind", "delta", "content", "provider", "model", "request_id"})

    def reasoning(self, delta: str) -> LLMResponseChunk:
        """Append reasoning (thinking) text; returns the chunk to yield."""
        self._reasoning.append(delta)
        return self._delta_chunk("reasoning", "reasoning_delta", delta)

    def tool_delta(
        self,
        index: Any,
        *,
        id: str | None = None,
        name: str | None = None,
        arguments: str | None = None,
        provider_data: dict[str, Any] | None = None,
    ) -> LLMResponseChunk:
        """Merge a fragment of tool call ``index`` (the vendor's index or block id).

        A different non-empty id arriving on an index that already has one starts a new call (some servers reuse
        index 0 for parallel calls). An id or name that is not a string raises ``TypeError`` here, in the
        decoder's per-event seam, rather than when the stream ends; ``arguments`` that are a JSON value rather
        than text are kept as their JSON, as a whole answer's are.
        """
        if (id is not None and type(id) is not str) or (name is not None and type(name) is not str):
            raise TypeError(f"a tool call's id or name is not a string: {id!r}, {name!r}"[:200])
        if arguments is not None and type(arguments) is not str:
            arguments = json.dumps(arguments, ensure_ascii=False)
        slot = self._slot_of_index.get(index)
        if slot is not None and id and self._tools[slot].id and self._tools[slot].id != id:
            slot = None
        if slot is None:
            slot = len(self._tools)
            self._slot_of_index[index] = slot
            self._tools[slot] = _ToolBuilder()
        builder = self._tools[slot]
        if id and not builder.id:
            builder.id = id
        if name and not builder.name:
            builder.name = name
        if arguments:
            builder.fragments.append(arguments)
        if provider_data:
            builder.provider_data = {**(builder.provider_data or {}), **provider_data}
        # The delta in OpenAI's shape: the call's id and name so far and only the new argument fragment, so a
        # relay (the gateway) can stream tool calls chunk for chunk. Built unvalidated: the fields are known good.
        partial = ToolCall.model_construct(id=builder.id, function=FunctionCall.model_construct(
            name=builder.name, arguments=arguments or ""))
        model, request_id = self.model, self.request_id
        if type(model) is not str or (request_id is not None and type(request_id) is not str):
            return self._chunk(kind="tool", tool_call_index=slot, delta="", tool_calls=[partial])
        self.chunk_count += 1
        values = _TEMPLATE.copy()
        values["kind"] = "tool"
        values["content"] = self.content
        values["provider"] = self.provider
        values["model"] = model
        values["tool_calls"] = [partial]
        values["tool_call_index"] = slot
        values["metadata"] = {}
        values["request_id"] = request_id
        return _unvalidated(values, {"kind", "delta", "content", "provider", "model", "request_id", "tool_calls",
                                     "tool_call_index"})

    def set_usage(self, usage: TokenUsage | None) -> None:
        """Record usage; the last non-null value wins."""
        if usage is not None:
            self.usage = usage

    def set_finish(self, native: str | None, normalized: str | None) -> None:
        """Record the finish reason (the vendor's value and ours); the last non-null value wins.

        A vendor value that is not a string (a malformed event) is kept as its text, never as a broken chunk.
        """
        if native is not None:
            self.native_finish_reason = native if isinstance(native, str) else str(native)
        if normalized is not None:
            self.finish_reason = normalized

    @property
    def reasoning_text(self) -> str | None:
        """All reasoning so far, or ``None`` when there was none."""
        return "".join(self._reasoning) if self._reasoning else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The complete tool calls, in the order they started."""
        return [self._tools[slot].build() for slot in sorted(self._tools)]

    def final_chunk(self) -> LLMResponseChunk:
        """The closing chunk: finish reason, usage and complete tool calls."""
        model, request_id, usage = self.model, self.request_id, self.usage
        finish, native = self.finish_reason, self.native_finish_reason
        tool_calls = self.tool_calls
        if (type(model) is str and type(self.content) is str and type(self.provider) is str
                and (request_id is None or type(request_id) is str) and (usage is None or type(usage) is TokenUsage)
                and (finish is None or type(finish) is str) and (native is None or type(native) is str)
                and all(type(call) is ToolCall for call in tool_calls)):
            # Every field is of its type already (the common case): built as validation would leave it.
            self.chunk_count += 1
            values = _TEMPLATE.copy()
            values["kind"] = "final"
            values["content"] = self.content
            values["provider"] = self.provider
            values["model"] = model
            values["finish_reason"] = finish
            values["native_finish_reason"] = native
            values["tool_calls"] = tool_calls
            values["usage"] = usage
            values["metadata"] = dict(self.metadata)
            values["request_id"] = request_id
            return _unvalidated(values, set(_FINAL_FIELDS))
        return self._chunk(
            kind="final",
            finish_reason=self.finish_reason,
            native_finish_reason=self.native_finish_reason,
            tool_calls=self.tool_calls,
            usage=self.usage,
            metadata=dict(self.metadata),
        )

    def to_response(self, duration: float = 0.0) -> LLMResponse:
        """The whole stream as the :class:`LLMResponse` that ``chat`` would have returned."""
        return LLMResponse(
            content=self.content,
            provider=self.provider,
            model=self.model,
            finish_reason=self.finish_reason,
            native_finish_reason=self.native_finish_reason,
            tool_calls=self.tool_calls,
            usage=self.usage,
            reasoning=self.reasoning_text,
            refusal=self.refusal,
            metadata=dict(self.metadata),
            request_id=self.request_id,
            duration=duration,
        )
