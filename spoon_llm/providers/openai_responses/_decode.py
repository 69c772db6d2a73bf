"""Responses API response mapping: a ``response`` object, or its typed SSE events, -> our normalised response.

Works on plain decoded JSON (no SDK objects), so every transport shares it. ``message`` items give the text
(``output_text`` parts) and the refusal (``refusal`` parts); ``function_call`` items our tool calls (id = the
item's ``call_id``, what a ``function_call_output`` answers); ``reasoning`` items the reasoning (summary texts
and ``reasoning_text`` content); built-in tool items (``web_search_call``, ``code_interpreter_call``...) are
listed in ``metadata["server_tool_calls"]``. When the output holds items our fields cannot rebuild (reasoning
with encrypted content, built-in tool calls, refusals, annotations, message phases), the output is kept in
``metadata["provider_data"]["openai_responses"]["items"]`` so ``to_message()`` sends it back verbatim.

The native finish reason is the response ``status``; ours is ``tool_calls`` / ``stop`` for ``completed``,
``length`` / ``content_filter`` for ``incomplete`` (by ``incomplete_details.reason``) and ``other`` for
``queued`` / ``in_progress`` / ``cancelled``. A ``failed`` response (or an ``error`` event) raises the mapped
error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ProviderError
from ...types import FinishReason, FunctionCall, LLMResponse, LLMResponseChunk, TokenUsage, ToolCall
from .._stream import StreamAccumulator
from ..openai._errors import error_from_body
from ._convert import PROVIDER

__all__ = ["StreamDecoder", "decode_response", "map_status", "response_error", "usage_from"]

_INCOMPLETE = {
    "max_output_tokens": FinishReason.LENGTH.value,
    "content_filter": FinishReason.CONTENT_FILTER.value,
}
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


def map_status(status: str | None, incomplete_reason: str | None, has_calls: bool) -> str | None:
    """Our finish reason for a response ``status`` (and ``incomplete_details.reason``)."""
    if status is None:
        return None
    if status == "completed":
        return FinishReason.TOOL_CALLS.value if has_calls else FinishReason.STOP.value
    if status == "incomplete":
        return _INCOMPLETE.get(incomplete_reason or "", FinishReason.OTHER.value)
    if status == "failed":
        return FinishReason.ERROR.value
    return FinishReason.OTHER.value


def usage_from(raw: Any) -> TokenUsage | None:
    """Our usage from a Responses API ``usage`` (input includes cached tokens, output includes reasoning)."""
    if not isinstance(raw, Mapping):
        return None
    inputs = raw.get("input_tokens") or 0
    outputs = raw.get("output_tokens") or 0
    in_details = raw.get("input_tokens_details")
    out_details = raw.get("output_tokens_details")
    return TokenUsage(
        input_tokens=inputs,
        output_tokens=outputs,
        total_tokens=raw.get("total_tokens") or inputs + outputs,
        cached_input_tokens=(in_details.get("cached_tokens") or 0) if isinstance(in_details, Mapping) else 0,
        reasoning_tokens=(out_details.get("reasoning_tokens") or 0) if isinstance(out_details, Mapping) else 0,
        raw=dict(raw),
    )


#: In-band error codes that mean what an HTTP status would (no status travels with them).
_CODE_STATUS = {"rate_limit_exceeded": 429}


def response_error(error: Any, model: str | None) -> ProviderError:
    """The error for a ``failed`` response's ``error`` or an ``error`` stream event.

    A ``rate_limit_exceeded`` code counts as HTTP 429 (a retryable :class:`RateLimitError`); ``server_error``
    becomes a :class:`ProviderUnavailableError` as in the OpenAI error mapping.
    """
    body = error if error else {"message": "the response failed"}
    code = body.get("code") if isinstance(body, Mapping) else None
    status = _CODE_STATUS.get(code) if isinstance(code, str) else None
    return error_from_body(status, body, provider=PROVIDER, model=model)


def _is_hosted_call(kind: Any) -> bool:
    return isinstance(kind, str) and kind.endswith("_call") and kind not in ("function_call", "custom_tool_call")


def _rebuildable(item: Mapping[str, Any]) -> bool:
    """Whether our fields (text, tool calls) give this output item back exactly enough to continue the turn."""
    kind = item.get("type")
    if kind == "function_call":
        return True
    if kind != "message" or item.get("phase"):
        return False
    return all(part.get("type") == "output_text" and not part.get("annotations")
               for part in item.get("content") or ())


class _Output:
    """What the output items say: text, refusal, reasoning, calls and the metadata they leave."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.server_calls: list[dict[str, Any]] = []
        self.annotations: list[Any] = []

    def read(self, items: list[Any]) -> _Output:
        for item in items:
            kind = item.get("type")
            if kind == "message":
                for part in item.get("content") or ():
                    ptype = part.get("type")
                    if ptype == "output_text":
                        self.text.append(part.get("text") or "")
                        self.annotations.extend(part.get("annotations") or ())
                    elif ptype == "refusal":
                        self.refusal.append(part.get("refusal") or "")
            elif kind == "function_call":
                self.calls.append(ToolCall(id=item.get("call_id"), function=FunctionCall(
                    name=item.get("name") or "", arguments=item.get("arguments") or "{}")))
            elif kind == "reasoning":
                self.reasoning.extend(p.get("text") or "" for p in item.get("summary") or ())
                self.reasoning.extend(p.get("text") or "" for p in item.get("content") or ()
                                      if p.get("type") == "reasoning_text")
            elif _is_hosted_call(kind):
                self.server_calls.append(server_call(item))
        return self


def server_call(item: Mapping[str, Any]) -> dict[str, Any]:
    """A built-in tool call as listed in ``metadata["server_tool_calls"]`` (the whole item under ``item``)."""
    return {"id": item.get("id"), "name": item.get("name"), "type": item.get("type"), "item": dict(item)}


def _metadata(data: Mapping[str, Any], items: list[Any], out: _Output) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if data.get("id"):
        metadata["response_id"] = data["id"]
    reason = (data.get("incomplete_details") or {}).get("reason")
    if reason:
        metadata["incomplete_reason"] = reason
    if out.server_calls:
        metadata["server_tool_calls"] = out.server_calls
    if out.annotations:
        metadata["annotations"] = out.annotations
    if items and not all(_rebuildable(item) for item in items):
        metadata["provider_data"] = {PROVIDER: {"items": list(items)}}
    return metadata


def decode_response(data: Mapping[str, Any], *, request_id: str | None = None) -> LLMResponse:
    """Our :class:`LLMResponse` from a ``response`` object; a ``failed`` one raises its error."""
    status = data.get("status")
    if status == "failed":
        raise response_error(data.get("error"), data.get("model"))
    items = list(data.get("output") or ())
    out = _Output().read(items)
    reason = (data.get("incomplete_details") or {}).get("reason")
    return LLMResponse(
        content="".join(out.text),
        provider=PROVIDER,
        model=data.get("model") or "",
        finish_reason=map_status(status, reason, bool(out.calls)),
        native_finish_reason=status,
        tool_calls=out.calls,
        usage=usage_from(data.get("usage")),
        reasoning="".join(out.reasoning) if out.reasoning else None,
        refusal="".join(out.refusal) if out.refusal else None,
        metadata=_metadata(data, items, out),
        request_id=request_id,
    )


class StreamDecoder:
    """Feeds Responses API stream events into a :class:`StreamAccumulator`; returns the chunks to yield.

    A function call's arguments are those of its ``response.output_item.done`` item (the concatenated
    ``response.function_call_arguments.delta`` fragments when that never arrives); usage, status and the final
    output come from the last ``response`` object (``response.created`` ... ``response.completed`` /
    ``incomplete`` / ``failed``). ``response.failed`` and ``error`` events raise the mapped error.
    """

    def __init__(self, acc: StreamAccumulator) -> None:
        self.acc = acc
        #: True once a terminal event (completed / incomplete / failed) arrived.
        self.done = False
        self._response: Mapping[str, Any] = {}
        self._usage: Any = None
        self._items: dict[int, Mapping[str, Any]] = {}
        self._finished: set[int] = set()
        self._arguments: dict[int, list[str]] = {}
        self._refusal: list[str] = []
        self._streamed = False

    def feed(self, event: Mapping[str, Any]) -> LLMResponseChunk | None:
        """Apply one decoded event; returns a chunk for text, reasoning and tool-call progress, else None."""
        kind = event.get("type")
        if kind == "response.output_text.delta":
            self._streamed = True
            return self.acc.text(event.get("delta") or "")
        if kind == "response.function_call_arguments.delta":
            index = event.get("output_index", 0)
            self._arguments.setdefault(index, []).append(event.get("delta") or "")
            if index in self._items:
                return self.acc.tool_delta(index)  # progress; the arguments are settled at the end
            return None
        if kind in _REASONING_DELTAS:
            return self.acc.reasoning(event.get("delta") or "")
        if kind == "response.refusal.delta":
            self._refusal.append(event.get("delta") or "")
            self.acc.refusal = "".join(self._refusal)
            return None
        if kind == "response.output_item.added" or kind == "response.output_item.done":
            return self._item(event, kind == "response.output_item.done")
        response = event.get("response")
        if isinstance(response, Mapping):
            self._response = response
            if response.get("usage"):
                self._usage = response["usage"]
            if response.get("model"):
                self.acc.model = response["model"]
            if kind == "response.failed":
                raise response_error(response.get("error"), self.acc.model)
            if kind in _TERMINAL:
                self.done = True
            return None
        if kind == "error":
            error = event.get("error")
            if not isinstance(error, Mapping):
                error = {k: v for k, v in event.items() if k not in ("type", "sequence_number")}
            raise response_error(error, self.acc.model)
        return None  # content_part, *.done, annotation, hosted-tool progress and event types added later

    def _item(self, event: Mapping[str, Any], done: bool) -> LLMResponseChunk | None:
        item = event.get("item")
        if not isinstance(item, Mapping):
            return None
        self._streamed = True
        index = event.get("output_index", len(self._items))
        first = index not in self._items
        if index not in self._finished:
            self._items[index] = item
        if done:
            self._finished.add(index)
        if first and item.get("type") == "function_call":
            return self.acc.tool_delta(index, id=item.get("call_id"), name=item.get("name"))
        return None

    def finish(self) -> list[LLMResponseChunk]:
        """Settle tool-call arguments, usage, finish reason and metadata; returns chunks still to yield.

        A server that sent only the final ``response`` object (no item events) has its output read from it.
        """
        chunks: list[LLMResponseChunk] = []
        final_output = list(self._response.get("output") or ())
        if not self._streamed and final_output:
            for index, item in enumerate(final_output):
                self._items[index] = item
                self._finished.add(index)
                if item.get("type") == "function_call":
                    chunks.append(self.acc.tool_delta(index, id=item.get("call_id"), name=item.get("name")))
            text = "".join(_Output().read(final_output).text)
            if text:
                chunks.insert(0, self.acc.text(text))
        items = [self._items[i] for i in sorted(self._items)]
        for index in sorted(self._items):
            item = self._items[index]
            if item.get("type") != "function_call":
                continue
            if index in self._finished:
                arguments = item.get("arguments") or ""
            else:
                arguments = "".join(self._arguments.get(index, ()))
            self.acc.tool_delta(index, arguments=arguments)
        self.acc.set_usage(usage_from(self._usage))
        status = self._response.get("status")
        reason = (self._response.get("incomplete_details") or {}).get("reason")
        self.acc.set_finish(status, map_status(status, reason, bool(self.acc.tool_calls)))
        out = _Output().read(items)
        self.acc.metadata.update(_metadata(self._response, final_output or items, out))
        if self.acc.refusal:
            self.acc.metadata["refusal"] = self.acc.refusal  # where a collected stream reads it from
        return chunks
