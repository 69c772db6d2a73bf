"""Relaying a manager stream to the client as server-sent events, in the shape of the request's API family.

Headers wait for the first chunk, so a failure before any output (every candidate refused, fallbacks included)
is still an ordinary error answer with its status. After that a failure travels as the family's error event.

The headers carry what is known at the first chunk: ``x-request-id``, ``x-spoon-provider``, ``x-spoon-model``
and ``x-spoon-attempts`` (the attempts that failed before it, then the deployment answering, ``:ok``). Cost and
cache status are known only at the end, after the headers went out; they are in the access log and the metrics
(HTTP trailers would need both the ASGI server and the clients to support them, and neither uvicorn nor the
official SDKs do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ..errors import LLMError
from ..request._chunk_timer import Resumed
from ..request.stream import StreamRequest
from ..types import LLMResponseChunk
from ._context import Call
from ._errors import GatewayError, anthropic_body, classify, openai_body

__all__ = ["StreamRenderer", "relay"]

_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class StreamRenderer(Protocol):
    """Turns manager chunks into one API family's events (see ``_openai_api`` and ``_anthropic_api``)."""

    def start(self) -> bytes:
        """The events that open the stream."""

    def chunk(self, chunk: LLMResponseChunk) -> bytes | None:
        """The events for one chunk (``None``: nothing to send)."""

    def final(self, chunk: LLMResponseChunk) -> bytes:
        """The events that close the stream."""

    def error(self, body: bytes) -> bytes:
        """The event carrying an error body."""


def _trace(first: LLMResponseChunk) -> str:
    """``deployment:outcome`` per attempt so far, from the metadata the manager puts on a stream's first chunk."""
    metadata = first.metadata
    attempts = metadata.get("attempts") or ()
    steps = [f"{a.get('deployment') or a.get('provider')}:"
             f"{'ok' if a.get('error_type') is None else a.get('status_code') or a.get('error_type')}"
             for a in attempts]
    if first.kind != "final":  # the final chunk's attempts include the one that answered
        steps.append(f"{metadata.get('deployment') or first.provider}:ok")
    return ",".join(steps)


async def relay(request: Call, stream: AsyncIterator[LLMResponseChunk], renderer: StreamRenderer,
                extra_headers: list[tuple[bytes, bytes]]) -> bytes:
    """Send ``stream`` to the client; records the delivered size and the closing chunk on ``request``.

    Events that are ready together (parsed from one read of the backend's stream) go out in one write: a chunk is
    only buffered while the next one arrives without waiting, and the buffer is sent before any wait, so nothing
    is held back. Returns the last events unsent, for the caller to send with the end of the response once it
    has settled the request; always closes the stream.
    """
    # A manager stream's own generator (saves a call per chunk); ``stream`` stays referenced until closed below.
    iterator = stream.chunks if type(stream) is StreamRequest else stream.__aiter__()
    send = request.send
    try:
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            raise GatewayError(502, "the backend ended the stream without an answer", code="upstream_error") \
                from None
        request.provider = first.provider
        request.delivered = len(first.delta) + len(first.reasoning_delta)
        headers = [*_SSE, (b"x-request-id", request.request_id.encode()),
                   (b"x-spoon-provider", first.provider.encode()), (b"x-spoon-model", first.model.encode()),
                   (b"x-spoon-attempts", _trace(first).encode()), *extra_headers]
        if request.family == "anthropic":  # the header the anthropic SDK reads its request ids from
            headers.append((b"request-id", request.request_id.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        request.streaming = True
        out = renderer.start()
        piece = renderer.chunk(first)
        pending = [out + piece if piece else out]
        if first.kind == "final":
            request.final = first
            return pending[0]
        try:
            while True:
                step = iterator.__anext__().__await__()
                try:
                    waiting = step.send(None)
                except StopIteration as ready:  # the next chunk was there without waiting: keep writing up
                    chunk = ready.value
                except StopAsyncIteration:
                    break
                else:  # it waits: what is written up goes out first
                    if pending:
                        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
                        pending.clear()
                    chunk = await Resumed(step, waiting)
                request.delivered += len(chunk.delta) + len(chunk.reasoning_delta)
                piece = renderer.chunk(chunk)
                if chunk.kind == "final":
                    request.final = chunk
                if piece:
                    pending.append(piece)
        except StopAsyncIteration:
            pass
        except LLMError as exc:
            if request.disconnected:
                raise
            failure = classify(exc)
            error = anthropic_body(failure) if request.family == "anthropic" else openai_body(failure)
            pending.append(renderer.error(error))
            request.stream_error = failure.status
            return b"".join(pending)
        if request.final is None:  # a stream that ended without its closing chunk
            pending.append(renderer.final(LLMResponseChunk(kind="final", provider=first.provider,
                                                           model=first.model)))
        return b"".join(pending)
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
