"""Pure stream mapping for OpenAI-compatible APIs: SSE bytes -> events -> our chunks.

The shared :class:`spoon_llm.transport.SSEParser` turns raw bytes (any chunking, LF/CRLF/CR line ends, ``:``
comment lines such as OpenRouter's ``: OPENROUTER PROCESSING``) into ``(event, data)`` pairs, inside the shared
loop :func:`spoon_llm.providers._sse_stream.sse_stream`. :class:`ChatStreamDecoder` turns
decoded ``chat.completion.chunk`` dicts into :class:`LLMResponseChunk` objects through the shared
:class:`StreamAccumulator` (text deltas, reasoning deltas, tool-call fragments merged by index, last non-null usage,
finish reason), and :class:`CompletionStreamDecoder` does the same for legacy ``text_completion`` chunks. No I/O:
every transport feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import DECODE_FAULTS, ProviderError, ResponseParsingError, StreamInterruptedError, malformed
from ...transport import loads
from ...transport._json import first_loads
from ...types import LLMResponse, LLMResponseChunk
from .._stream import StreamAccumulator
from ._decode import content_text, parse_usage, thinking_text, vendor_cost
from ._dialect import normalize_finish_reason
from ._errors import error_from_body

__all__ = ["DONE", "ChatStreamDecoder", "CompletionStreamDecoder"]

#: The data payload that ends an OpenAI stream.
DONE = "[DONE]"
#: The same as raw bytes, compared before any decoding.
DONE_BYTES = b"[DONE]"
#: An event cut by the end of the body (no document to feed).
_CUT: Any = object()


def _completion_as_chunk(data: Mapping[str, Any]) -> dict[str, Any]:
    """A whole ``chat.completion`` as one stream chunk."""
    choices = [{**c, "delta": c.get("message") or {}} for c in data.get("choices") or ()]
    return {**data, "choices": choices}


def _merge_reasoning_details(into: dict[Any, dict[str, Any]], details: Any) -> None:
    # OpenRouter streams reasoning_details fragments by index: text is concatenated, the rest is last-wins.
    if not isinstance(details, list):
        return
    for pos, item in enumerate(details):
        if not isinstance(item, dict):
            continue
        key = item.get("index", pos)
        current = into.get(key)
        if current is None:
            into[key] = dict(item)
            continue
        for field, value in item.items():
            if value is None:
                continue
            if field in ("text", "summary", "data") and isinstance(value, str):
                current[field] = (current.get(field) or "") + value
            else:
                current[field] = value


class ChatStreamDecoder:
    """Turns decoded ``chat.completion.chunk`` dicts into our chunks; one instance per stream.

    ``feed`` returns the chunks to yield (empty deltas produce none); after feeding a chunk, check
    :attr:`error` for an in-band ``{"error": ...}`` payload (OpenRouter sends them on 200 streams) and raise it.
    ``final_chunk`` closes the stream with finish reason, usage and complete tool calls.
    """

    def __init__(self, provider: str, model: str, request_id: str | None = None) -> None:
        self.acc = StreamAccumulator(provider, model)
        self.acc.request_id = request_id
        self.error: ProviderError | None = None
        self._requested = model  # errors name the model asked for, whatever the chunks call it
        self._done = False  # [DONE] arrived, or the body ended inside an event
        self._cut = False
        self._model_seen = False
        self._choices: set[int] = set()
        self._others: dict[int, dict[str, Any]] = {}
        self._annotations: list[Any] = []
        self._details: dict[Any, dict[str, Any]] = {}

    @property
    def content_sent(self) -> bool:
        """True once any text, reasoning or tool fragment has been produced."""
        return self.acc.chunk_count > 0

    def feed(self, chunk: Mapping[str, Any]) -> list[LLMResponseChunk]:
        """Translate one chunk; returns the chunks to yield."""
        acc = self.acc
        if type(chunk) is not dict and not isinstance(chunk, Mapping):
            raise self._not_an_object(chunk)
        out: list[LLMResponseChunk] = []
        if not self._model_seen:
            model = chunk.get("model")
            if model:
                acc.model = model
                self._model_seen = True
            if chunk.get("id"):  # Azure's opening filter-results chunk has an empty id (and model)
                acc.metadata["id"] = chunk["id"]
                if acc.request_id is None:
                    acc.request_id = chunk["id"]
        usage = chunk.get("usage")
        if not usage and "x_groq" in chunk:  # older Groq streams: usage only in the last x_groq object
            groq = chunk["x_groq"]
            usage = groq.get("usage") if isinstance(groq, dict) else None
        if usage:
            acc.set_usage(parse_usage(usage))
            if isinstance(usage, dict) and "cost" in usage:
                acc.metadata["cost"] = usage["cost"]
        if "prompt_filter_results" in chunk:  # Azure content filtering, kept like the non-stream answer's
            acc.metadata["prompt_filter_results"] = chunk["prompt_filter_results"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            self._choices.add(index)
            if index != 0:
                self._other_choice(index, choice)
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if isinstance(content, str):
                    out.append(acc.text(content))
                else:  # a list of parts; Mistral streams its reasoning as "thinking" parts
                    text = content_text(content)
                    if text:
                        out.append(acc.text(text))
                    thought = thinking_text(content)
                    if thought:
                        out.append(acc.reasoning(thought))
            if len(delta) > (content is not None):  # more than a text delta (the common case) to look at
                self._other_delta_fields(delta, out)
            native = choice.get("finish_reason")
            if native is not None:  # one per stream: the helper is called only then
                self._finish_reason(native)
            filtered = choice.get("content_filter_results")
            if filtered:
                acc.metadata["content_filter_results"] = filtered
            vendor_native = choice.get("native_finish_reason")
            if vendor_native is not None:
                acc.metadata["native_finish_reason"] = vendor_native
        error = chunk.get("error")
        if error is not None:
            self.error = in_band_error(error, provider=acc.provider, model=acc.model, request_id=acc.request_id,
                                       chunk=chunk)
        return out

    def _not_an_object(self, chunk: Any) -> ResponseParsingError:
        acc = self.acc
        return ResponseParsingError(f"a stream chunk is not a JSON object: {str(chunk)[:100]}",
                                    provider=acc.provider, model=acc.model, request_id=acc.request_id)

    def _finish_reason(self, native: Any) -> None:
        if not isinstance(native, str):  # checked here: the final chunk would fail far from the wire
            raise TypeError(f"finish_reason is a {type(native).__name__}")
        self.acc.set_finish(native, normalize_finish_reason(native))

    # -- the SSE view (:func:`spoon_llm.providers._sse_stream.sse_stream` drives these) --------------------

    def event(self, name: str | None, data: bytes, last: bool) -> list[LLMResponseChunk]:
        """One SSE event's data: ``[DONE]`` ends the stream (later events are drained), else one JSON chunk."""
        if self._done:
            return []  # drain to the end so the connection can be reused
        if data == DONE_BYTES:
            self._done = True
            return []
        try:
            parsed = first_loads(data)
        except ValueError:
            parsed = self._decode_slowly(data, last)
            if parsed is _CUT:
                return []
        try:
            out = self.feed(parsed)
        except DECODE_FAULTS as exc:
            raise malformed("a stream event", parsed, exc, provider=self.acc.provider, model=self._requested) from exc
        if self.error is not None:
            raise self.error
        return out

    def _decode_slowly(self, data: bytes, last: bool) -> Any:
        """What orjson refused: the standard library's reading of it, or ``_CUT`` for half an event at the end."""
        try:
            return loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            if last:  # half an event: the body was cut, reported by end()
                self._done = self._cut = True
                return _CUT
            raise ResponseParsingError(f"the answer is not valid JSON: {exc}", provider=self.acc.provider,
                                       model=self._requested) from exc

    def end(self) -> list[LLMResponseChunk]:
        """The body ended: the final chunk, or the error for a stream that stopped before the answer did."""
        acc = self.acc
        if (not self._done or self._cut) and acc.finish_reason is None:
            # Neither [DONE] nor a finish reason: the body ended early, the answer may be incomplete.
            message = "the stream ended before the answer was complete"
            if self.content_sent:
                raise StreamInterruptedError(message, partial_content=acc.content, partial_usage=acc.usage,
                                             provider=acc.provider, model=self._requested,
                                             request_id=acc.request_id)
            raise ResponseParsingError(message, provider=acc.provider, model=self._requested,
                                       request_id=acc.request_id)
        return [self._closing_chunk()]

    def _closing_chunk(self) -> LLMResponseChunk:
        """:meth:`final_chunk`, where fields of the wrong type that the deltas left (tool calls) surface."""
        try:
            return self.final_chunk()
        except DECODE_FAULTS as exc:
            error = malformed("the stream's closing state", str(exc), exc, provider=self.acc.provider,
                              model=self._requested)
            if not self.content_sent:
                raise error from exc
            # Content reached the caller already: the answer is half-delivered.
            raise StreamInterruptedError(error.message, partial_content=self.acc.content,
                                         partial_usage=self.acc.usage, provider=self.acc.provider,
                                         model=self._requested, request_id=self.acc.request_id) from exc

    def whole(self, data: Any) -> list[LLMResponseChunk]:
        """A whole ``chat.completion`` (a server that ignored ``stream``) as the chunks of a stream."""
        try:
            out = self.feed(_completion_as_chunk(data))
            out.append(self.final_chunk())
        except DECODE_FAULTS as exc:
            raise malformed("a stream event", data, exc, provider=self.acc.provider, model=self._requested) from exc
        return out

    def _other_delta_fields(self, delta: Mapping[str, Any], out: list[LLMResponseChunk]) -> None:
        acc = self.acc
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            out.append(acc.reasoning(reasoning))
        calls = delta.get("tool_calls")
        if calls:
            for pos, call in enumerate(calls):
                fn = call.get("function") or {}
                out.append(acc.tool_delta(call.get("index", pos), id=call.get("id"), name=fn.get("name"),
                                          arguments=fn.get("arguments")))
        elif delta.get("function_call"):
            fn = delta["function_call"]
            out.append(acc.tool_delta("function_call", name=fn.get("name"), arguments=fn.get("arguments")))
        self._rare_delta_fields(delta)

    def _rare_delta_fields(self, delta: Mapping[str, Any]) -> None:
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self.acc.refusal = (self.acc.refusal or "") + refusal
        annotations = delta.get("annotations")
        if annotations:
            self._annotations.extend(annotations)
        details = delta.get("reasoning_details")
        if details:
            _merge_reasoning_details(self._details, details)

    def _other_choice(self, index: int, choice: Mapping[str, Any]) -> None:
        state = self._others.setdefault(index, {"index": index, "content": "", "finish_reason": None})
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            state["content"] += content if isinstance(content, str) else content_text(content)
        if choice.get("finish_reason") is not None:
            state["finish_reason"] = choice["finish_reason"]

    def _finish_metadata(self) -> None:
        meta = self.acc.metadata
        if self.acc.refusal:
            meta["refusal"] = self.acc.refusal
        if self._annotations:
            meta["annotations"] = self._annotations
        if self._details:
            meta["provider_data"] = {"reasoning_details": [self._details[k] for k in self._details]}
        if len(self._choices) > 1:
            meta["n_choices"] = len(self._choices)
            first = {"index": 0, "content": self.acc.content, "finish_reason": self.acc.native_finish_reason}
            meta["choices"] = [first, *(self._others[k] for k in sorted(self._others))]

    def final_chunk(self) -> LLMResponseChunk:
        """The closing chunk (kind ``final``)."""
        self._finish_metadata()
        return self.acc.final_chunk()

    def to_response(self, duration: float = 0.0) -> LLMResponse:
        """Everything streamed so far as one :class:`LLMResponse`."""
        self._finish_metadata()
        response = self.acc.to_response(duration)
        usage = response.usage.raw if response.usage is not None else None
        cost = vendor_cost(usage)
        if cost is not None:
            response.cost = cost
        return response


class CompletionStreamDecoder(ChatStreamDecoder):
    """Turns legacy ``text_completion`` stream chunks (``choices[].text``) into our chunks."""

    def feed(self, chunk: Mapping[str, Any]) -> list[LLMResponseChunk]:
        """Translate one chunk; returns the chunks to yield."""
        acc = self.acc
        if not isinstance(chunk, Mapping):
            raise self._not_an_object(chunk)
        out: list[LLMResponseChunk] = []
        if not self._model_seen and chunk.get("model"):
            acc.model = chunk["model"]
            self._model_seen = True
        usage = chunk.get("usage")
        if usage:
            acc.set_usage(parse_usage(usage))
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            self._choices.add(index)
            if index != 0:
                state = self._others.setdefault(index, {"index": index, "content": "", "finish_reason": None})
                state["content"] += choice.get("text") or ""
                continue
            text = choice.get("text")
            if text:
                out.append(acc.text(text))
            native = choice.get("finish_reason")
            if native is not None:  # one per stream: the helper is called only then
                self._finish_reason(native)
        error = chunk.get("error")
        if error is not None:
            self.error = in_band_error(error, provider=acc.provider, model=acc.model, request_id=acc.request_id)
        return out


def in_band_error(
    error: Any,
    *,
    provider: str,
    model: str | None,
    request_id: str | None,
    chunk: Mapping[str, Any] | None = None,
) -> ProviderError:
    """The error for an ``{"error": {...}}`` payload inside a 200 stream; its numeric ``code`` is the status.

    ``body`` of the error is the whole chunk (it may carry the usage of the failed generation).
    """
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, int) and isinstance(error, dict):
        code = error.get("status_code")  # Groq's `event: error` payload
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    body = dict(chunk) if chunk is not None else {"error": error}
    return error_from_body(status, body, provider=provider, model=model, request_id=request_id)
