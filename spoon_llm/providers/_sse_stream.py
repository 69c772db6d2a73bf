"""The one SSE stream loop: bytes of an open response -> events -> what the vendor's decoder makes of them.

Every SSE vendor (OpenAI-compatible, Anthropic, the Responses API, Gemini's native transport) reads its stream
through :func:`sse_stream`; only the :class:`EventDecoder` differs. The loop owns what they used to spell
separately: reading chunk by chunk, mapping what a read raises (``fail``), framing by the shared
:class:`~spoon_llm.transport.SSEParser` (with the deployment's size limits), the events left when the body ends,
and the end-of-stream check. Closing the response stays with the caller (its ``finally``), which also covers a
consumer that stops early.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from ..errors import safe_cause
from ..transport import SSEParser

__all__ = ["EventDecoder", "ResponseStream", "sse_stream"]

T_co = TypeVar("T_co", covariant=True)


class ResponseStream(Protocol):
    """A streamed answer: what a stream loop needs of either transport's response object."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers (case-insensitive lookups)."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""

    async def aread(self) -> bytes:
        """The whole body."""

    async def aclose(self) -> None:
        """Give the connection back (or close it)."""


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
    chunks = response.aiter_bytes()
    while True:
        try:
            raw = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except Exception as exc:
            mapped = fail(exc)
            if mapped is exc:
                raise
            raise mapped from safe_cause(exc)
        for name, data in parser.feed(raw):
            for item in decoder.event(name, data, False):
                yield item
    for name, data in parser.close():
        for item in decoder.event(name, data, True):
            yield item
    for item in decoder.end():
        yield item
