r"""Server-sent events over raw bytes: split on blank lines ourselves, hand each event's data on undecoded.

One parser serves every vendor and both transports (the SDKs' byte streams and our own aiohttp one), so a stream
is framed the same way whoever moved its bytes. It follows the SSE specification where it matters for LLM APIs:
LF, CRLF and bare CR line ends (a CRLF split across two reads included), comment lines (``: keep-alive``,
OpenRouter's ``: OPENROUTER PROCESSING``), multi-line ``data`` joined with ``\n``, one space after the colon
dropped, ``id``/``retry`` ignored. The data stays bytes so that the caller decodes each event's JSON exactly once
(``orjson.loads`` takes bytes as they are).
"""

from __future__ import annotations

__all__ = ["SSEParser", "TextSSEParser"]

Event = tuple[str | None, bytes]


def _parse_frame(frame: bytes) -> Event | None:
    """One event from the lines between two blank lines (``None`` when it has no data: a comment, an id...)."""
    if frame[:7] == b"event: ":
        # Anthropic's shape, "event: x\ndata: {...}", without the general loop.
        head, sep, rest = frame.partition(b"\n")
        if sep and rest[:6] == b"data: " and b"\n" not in rest:
            return head[7:].decode(), rest[6:]
    event: str | None = None
    data: list[bytes] = []
    for line in frame.split(b"\n"):
        if not line or line[0] == 58:  # blank (a frame may open with one) or ":" -- a comment
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode()
    if not data:
        return None
    return event, data[0] if len(data) == 1 else b"\n".join(data)


class SSEParser:
    """Incremental parser: ``feed`` bytes in any chunking, get the ``(event, data)`` pairs they complete.

    ``event`` is the event name (``None`` when the stream names none), ``data`` the raw payload bytes. ``close``
    returns the last event when the body ended without its blank line (the caller decides whether a half event
    counts: a cut JSON document will not decode).

    Example::

        parser = SSEParser()
        async for raw in response.content.iter_any():
            for _event, data in parser.feed(raw):
                handle(orjson.loads(data))
        for _event, data in parser.close():
            ...
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse what ``chunk`` completes; the rest waits for the next chunk."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            tail = b""
            if buffer[-1:] == b"\r":  # maybe the first half of a CRLF split across reads
                buffer, tail = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            end = buffer.rfind(b"\n\n")
            if end < 0:
                self._buffer = buffer + tail
                return []
            self._buffer = buffer[end + 2:] + tail
        else:
            end = buffer.rfind(b"\n\n")
            if end < 0:
                self._buffer = buffer
                return []
            self._buffer = buffer[end + 2:]
        events: list[Event] = []
        for frame in buffer[:end].split(b"\n\n"):
            if frame[:6] == b"data: " and b"\n" not in frame:  # the common shape: one data line
                events.append((None, frame[6:]))
                continue
            event = _parse_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[Event]:
        """End of input: the last event if the body stopped before its closing blank line."""
        rest, self._buffer = self._buffer, b""
        if rest.strip(b"\r\n"):
            return SSEParser.feed(self, rest + b"\n\n")
        return []

    # The name the Anthropic reader used.
    flush = close


class TextSSEParser(SSEParser):
    """The same parser handing data on as text (for callers that want ``str``; the hot paths use bytes)."""

    __slots__ = ()

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:  # type: ignore[override]
        """Parse what ``chunk`` completes, data decoded as UTF-8."""
        return [(event, data.decode()) for event, data in super().feed(chunk)]

    def close(self) -> list[tuple[str | None, str]]:  # type: ignore[override]
        """End of input, data decoded as UTF-8."""
        return [(event, data.decode()) for event, data in super().close()]

    flush = close  # type: ignore[assignment]
