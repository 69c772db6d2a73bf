"""A small server-sent-events reader over raw response bytes, shared by the Anthropic transports.

Decoding the stream ourselves (rather than through the SDK's typed event objects) keeps SDK objects off the
hot path: each event's ``data`` is handed on as a string for one ``json.loads``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["SSEReader", "iter_sse"]


class SSEReader:
    r"""Incremental SSE parser: feed it byte chunks, get ``(event, data)`` pairs for complete events.

    Accepts ``\\n`` and ``\\r\\n`` line ends, multi-line ``data`` (joined with ``\\n``) and comment lines.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        """Parse what ``chunk`` completes; the rest waits for the next chunk."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 2:]
        events: list[tuple[str | None, str]] = []
        for frame in buffer[:end].split(b"\n\n"):
            event = _parse_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[tuple[str | None, str]]:
        """Whatever complete event is left when the body ends without a final blank line."""
        frame, self._buffer = self._buffer.strip(b"\n"), b""
        event = _parse_frame(frame) if frame else None
        return [event] if event is not None else []


def _parse_frame(frame: bytes) -> tuple[str | None, str] | None:
    text = frame.decode("utf-8")
    if text.startswith("event: ") and text.count("\n") == 1:
        # The common shape, "event: x\ndata: {...}", without the general loop.
        head, _, data_line = text.partition("\n")
        if data_line.startswith("data: "):
            return head[7:], data_line[6:]
    event: str | None = None
    data: list[str] = []
    for line in text.split("\n"):
        if not line or line[0] == ":":
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if not data:
        return None
    return event, "\n".join(data)


async def iter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[str | None, str]]:
    """``(event, data)`` for every event in a byte stream."""
    reader = SSEReader()
    async for chunk in chunks:
        for event in reader.feed(chunk):
            yield event
    for event in reader.flush():
        yield event
