"""An httpx2 transport wrapper that holds an SDK's bodies to the rules our native transport follows.

google-genai decodes bodies as text with replacement characters and frames SSE by itself, so on its own it turns
invalid UTF-8 into U+FFFD where our native path raises, reads an HTML page under a streamed 200 as a broken
chunk, and accepts an event of any size. Wrapped around the SDK's HTTP transport (the client we build for it),
:class:`StrictTransport` validates every body as UTF-8 as it streams past (incrementally: linear, no copy
kept), caps one SSE event (``max_event_bytes``) and a whole body (``max_stream_bytes``), and refuses a streamed
request's 200 that is neither an event stream nor JSON. It raises our typed errors from inside the body read;
they reach the caller unchanged through the SDK.

This module imports httpx2 at the top: import it only where the SDK client is built.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator

import httpx2

from ..errors import NetworkError, ResponseParsingError, ResponseTooLargeError, excerpt
from ._sse import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_STREAM_BYTES

__all__ = ["StrictTransport"]


class _StrictStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, owner: StrictTransport, sse: bool) -> None:
        self._inner = inner
        self._owner = owner
        self._sse = sse

    async def __aiter__(self) -> AsyncIterator[bytes]:
        owner = self._owner
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        total = event = 0
        newline_last = False
        tail: list[bytes] = []  # the pieces of the event still open (an SSE body's last one must be whole)
        async for chunk in self._inner:
            total += len(chunk)
            if total > owner.max_stream_bytes:
                raise owner.too_large("the answer", owner.max_stream_bytes, "max_stream_bytes")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise ResponseParsingError(f"the answer is not valid UTF-8 ({exc.reason})", provider=owner.provider,
                                           model=None) from exc
            # Bytes since the last blank line: the size of the event still open.
            end = max(chunk.rfind(b"\n\n"), chunk.rfind(b"\r\n\r\n"))
            if end >= 0:
                event = len(chunk) - end
                tail = [chunk[end:]]
            elif newline_last and chunk[:1] in (b"\n", b"\r"):
                event = len(chunk)
                tail = [chunk]
            else:
                event += len(chunk)
                tail.append(chunk)
            if event > owner.max_event_bytes:
                raise owner.too_large("one streamed event", owner.max_event_bytes, "max_event_bytes")
            newline_last = chunk[-1:] == b"\n"
            yield chunk
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ResponseParsingError("the answer ends inside a UTF-8 sequence", provider=owner.provider,
                                       model=None) from exc
        if self._sse and tail:
            self._check_last_event(b"".join(tail))

    def _check_last_event(self, last: bytes) -> None:
        """A body that stops inside an event was cut (a network failure, as on the native path)."""
        data = [line[5:].strip() for line in last.replace(b"\r", b"\n").split(b"\n") if line.startswith(b"data:")]
        if not data:
            return
        try:
            json.loads(b"\n".join(data))
        except ValueError as exc:
            raise NetworkError("the stream ended inside an event", provider=self._owner.provider) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class StrictTransport(httpx2.AsyncBaseTransport):
    """Wraps ``inner`` (an ``httpx2.AsyncHTTPTransport``); see the module docstring for what it enforces."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, provider: str,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES) -> None:
        self._inner = inner
        self.provider = provider
        self.max_event_bytes = max_event_bytes
        self.max_stream_bytes = max_stream_bytes

    def too_large(self, what: str, limit: int, setting: str) -> ResponseTooLargeError:
        """The error for a body over one of the caps."""
        return ResponseTooLargeError(
            f"{what} exceeds {limit} bytes; raise the provider's {setting} if such answers are expected",
            provider=self.provider, retryable=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send through the wrapped transport; the body is checked as the SDK reads it."""
        response = await self._inner.handle_async_request(request)
        streamed = b"alt=sse" in request.url.query
        content_type = response.headers.get("content-type", "")
        if streamed and response.status_code == 200 and content_type and "text/event-stream" not in content_type \
                and "json" not in content_type:
            try:
                head = b""
                async for piece in response.stream:  # type: ignore[union-attr]
                    head += piece
                    if len(head) > 200:
                        break
            finally:
                await response.aclose()
            raise ResponseParsingError(f"expected an event stream, got {content_type}: {excerpt(head)}",
                                       provider=self.provider)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _StrictStream(response.stream, self, "text/event-stream" in content_type)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

    def __getattr__(self, name: str) -> object:
        # Everything else (the pool and its limits...) is the wrapped transport's.
        return getattr(self._inner, name)
