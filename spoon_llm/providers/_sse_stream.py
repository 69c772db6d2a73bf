"""The one SSE stream loop: bytes of an open response -> events -> what the vendor's decoder makes of them.

Every SSE vendor (OpenAI-compatible, Anthropic, the Responses API, Gemini's native transport) reads its stream
through :func:`sse_stream`; only the :class:`EventDecoder` differs. The loop owns what they used to spell
separately: reading chunk by chunk, mapping what a read raises (``fail``), framing by the shared
:class:`~spoon_llm.transport.SSEParser` (with the deployment's size limits), the events left when the body ends,
and the end-of-stream check. Closing the response stays with the caller (its ``finally``), which also covers a
consumer that stops early.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar

from ..errors import DECODE_FAULTS, LLMError, NetworkError, ResponseParsingError, malformed, safe_cause
from ..transport import SSEParser, loads
from ..types import LLMResponseChunk
from ._common import stream_failure
from ._stream import StreamAccumulator
from ._transport import ResponseStream

__all__ = ["EventDecoder", "JsonEvents", "body_reader", "sse_stream"]

T_co = TypeVar("T_co", covariant=True)


class EventDecoder(Protocol[T_co]):
    """A vendor's view of one stream: each SSE event in, what to yield out."""

    def event(self, name: str | None, data: bytes, last: bool) -> Iterable[T_co]:
        """What one event yields; ``last``: it came from the bytes left when the body ended (maybe cut)."""

    def end(self) -> Iterable[T_co]:
        """The body ended: raise when the stream was cut short, else what closes it (the final chunk)."""


async def sse_stream(response: ResponseStream, decoder: EventDecoder[T_co], parser: SSEParser,
                     fail: Callable[[Exception], BaseException]) -> AsyncGenerator[T_co, None]:
    """Decode one open SSE response with ``decoder``.

    ``fail(exc)`` is the error to raise for what reading the body raised (the transport's error-mapping seam plus
    the "interrupted after content" rule); it may return ``exc`` itself to let it through unchanged.
    """
    read, read_error = body_reader(response)
    while True:
        try:
            raw = await read()
        except Exception as exc:
            raise_read_failure(exc, read_error, fail)
        if not raw:
            break
        for name, data in parser.feed(raw):
            for item in decoder.event(name, data, False):
                yield item
    for name, data in parser.close():
        for item in decoder.event(name, data, True):
            yield item
    for item in decoder.end():
        yield item


def raise_read_failure(exc: Exception, read_error: Callable[[Exception], Exception],
                       fail: Callable[[Exception], BaseException]) -> NoReturn:
    """Raise our error for what a body read raised: ``read_error`` maps it, then ``fail`` may replace that.

    ``fail`` returning ``exc`` lets it through unchanged; the mapped error keeps the read's error as its cause
    (through :func:`safe_cause`, so no key reaches a traceback).
    """
    error = read_error(exc)
    if error is not exc:
        error.__cause__ = exc
    mapped = fail(error)
    if mapped is exc:
        raise exc
    if mapped is error:
        raise error from safe_cause(exc)  # a transport exception may hold the request and its auth headers
    raise mapped from safe_cause(error)


def body_reader(response: ResponseStream) -> tuple[Callable[[], Awaitable[bytes]],
                                                   Callable[[Exception], Exception]]:
    """How to read ``response``'s body piece by piece (``b""`` at its end), and our error for what a read raises.

    The native transport's stream is read straight from aiohttp (its errors mapped by the second callable), so
    no generator sits between the socket and the stream loop; any other response through its ``aiter_bytes``.
    """
    readany = getattr(response, "readany", None)
    if readany is not None:
        read_error: Callable[[Exception], Exception] = response.read_error  # type: ignore[attr-defined]
        return readany, read_error
    return _NextPiece(response.aiter_bytes()), _unchanged


class _NextPiece:
    """The next non-empty piece of an async iterator of bytes, ``b""`` once it ends."""

    __slots__ = ("_next",)

    def __init__(self, pieces: AsyncIterator[bytes]) -> None:
        self._next = pieces.__anext__

    async def __call__(self) -> bytes:
        try:
            while True:
                piece = await self._next()
                if piece:
                    return piece
        except StopAsyncIteration:
            return b""


def _unchanged(exc: Exception) -> Exception:
    return exc


class EventFeed(Protocol):
    """A vendor decoder fed one decoded JSON event at a time (Anthropic's, the Responses API's)."""

    done: bool  # the vendor's closing event arrived

    def feed(self, event: Mapping[str, Any]) -> LLMResponseChunk | None:
        """Apply one event; the chunk to yield, if any."""

    def finish(self) -> Iterable[LLMResponseChunk] | None:
        """Record what is known only at the end; chunks still to yield, if any."""


class JsonEvents:
    """The :class:`EventDecoder` of a stream whose every event is one JSON object and which ends with a named one.

    An event that is not JSON is a cut stream when it is the last (or when ``undecodable_is_cut``), else a parsing
    error; either becomes an interruption once chunks reached the caller. A body that ends before the closing
    event is a cut stream too.
    """

    __slots__ = ("_acc", "_closing", "_cut_always", "_feed", "_model", "_provider")

    def __init__(self, feed: EventFeed, acc: StreamAccumulator, *, provider: str, model: str, closing_event: str,
                 undecodable_is_cut: bool = False) -> None:
        self._feed = feed
        self._acc = acc
        self._provider = provider
        self._model = model
        self._closing = closing_event
        self._cut_always = undecodable_is_cut

    def _cut(self, message: str) -> LLMError:
        # Before any chunk reached the caller the request can safely be retried elsewhere; after, it cannot.
        return stream_failure(NetworkError(message, provider=self._provider, model=self._model), self._acc,
                              self._provider, self._model)

    def event(self, name: str | None, data: bytes, last: bool) -> tuple[LLMResponseChunk, ...]:
        """One event: decoded once, fed to the vendor decoder."""
        try:
            event = loads(data)
        except ValueError as exc:
            message = f"undecodable stream event {_preview(data)!r}"
            if last or self._cut_always:  # the body ended inside this event: a cut stream
                raise self._cut(message) from exc
            raise stream_failure(ResponseParsingError(message, provider=self._provider, model=self._model),
                                 self._acc, self._provider, self._model) from exc
        try:
            chunk = self._feed.feed(event)
        except LLMError:
            raise
        except DECODE_FAULTS as exc:
            raise self._malformed(ResponseParsingError(f"unexpected stream event {_preview(data)!r}",
                                                       provider=self._provider, model=self._model)) from exc
        return () if chunk is None else (chunk,)

    def _malformed(self, error: ResponseParsingError) -> LLMError:
        # Before any chunk reached the caller the request can be retried; after, it is an interruption.
        return stream_failure(error, self._acc, self._provider, self._model)

    def end(self) -> list[LLMResponseChunk]:
        """The closing chunks, or the cut-stream error when the closing event never came."""
        if not self._feed.done:
            raise self._cut(f"the stream ended before {self._closing}")
        acc = self._acc
        try:
            out = list(self._feed.finish() or ())
            out.append(acc.final_chunk())
        except DECODE_FAULTS as exc:  # what the events left (usage, tool calls) has fields of the wrong type
            raise self._malformed(malformed("the stream's closing state", str(exc), exc,
                                            provider=self._provider, model=self._model)) from exc
        return out


def _preview(data: bytes) -> str:
    return data[:200].decode("utf-8", errors="replace")
