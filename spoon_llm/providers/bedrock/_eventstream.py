"""``application/vnd.amazon.eventstream``: the binary framing of Bedrock's streaming answers, decoded incrementally.

One message on the wire::

    total length (u32) | headers length (u32) | prelude CRC32 | headers | payload | message CRC32

All integers are big-endian; the prelude CRC covers the first 8 bytes, the message CRC everything before it. A
header is ``name length (u8) | name | type (u8) | value`` where the value's layout depends on the type (bool
true/false carry none, byte/short/int/long/timestamp are fixed-size, byte arrays and strings carry a u16 length,
a UUID is 16 bytes). :class:`EventStreamDecoder` accepts the body in pieces split at any byte and hands back
whole messages; a bad CRC or an impossible length raises :class:`EventStreamError` (a ``ValueError``).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, NamedTuple

__all__ = ["EventStreamDecoder", "EventStreamError", "Frame"]

_PRELUDE = 12
_CRC = 4
# The limits botocore and the AWS SDKs enforce: a larger length means a corrupt (or hostile) stream.
_MAX_MESSAGE = 16 * 1024 * 1024
_MAX_HEADERS = 128 * 1024
_U32 = struct.Struct(">I")
_PRELUDE_FIELDS = struct.Struct(">II")
_U16 = struct.Struct(">H")
# Fixed-size header value types: type -> (size, struct format).
_FIXED: dict[int, tuple[int, str]] = {2: (1, ">b"), 3: (2, ">h"), 4: (4, ">i"), 5: (8, ">q"), 8: (8, ">q")}


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad CRC, impossible length, truncated header)."""


class Frame(NamedTuple):
    """One decoded message: its headers (``:event-type``, ``:message-type``...) and its raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        """``event``, ``exception`` or ``error`` (``event`` when the header is missing)."""
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str | None:
        """The ``:event-type`` header (``:exception-type`` for an exception, ``:error-code`` for an error)."""
        kind = self.message_type
        name = ":event-type" if kind == "event" else ":exception-type" if kind == "exception" else ":error-code"
        value = self.headers.get(name)
        return str(value) if value is not None else None


class EventStreamDecoder:
    """Feed body bytes as they arrive; get back every message completed so far.

    Example::

        decoder = EventStreamDecoder()
        async for piece in response.aiter_bytes():
            for frame in decoder.feed(piece):
                ...
        decoder.close()     # raises EventStreamError when the body stopped inside a message
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return the messages it completed, in order."""
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        start = 0
        size = len(buffer)
        with memoryview(buffer) as whole:
            while size - start >= _PRELUDE:
                total, headers_length = _PRELUDE_FIELDS.unpack_from(whole, start)
                if size - start < total:
                    # Check the prelude as soon as it is here, so a corrupt length fails now, not after 16 MiB.
                    _check_prelude(whole, start, total, headers_length)
                    break
                frames.append(_decode_message(whole[start:start + total], total, headers_length))
                start += total
        if start:
            del buffer[:start]
        return frames

    def close(self) -> None:
        """Check the body ended on a message boundary."""
        if self._buffer:
            left = len(self._buffer)
            self._buffer.clear()
            raise EventStreamError(f"the event stream ended inside a message ({left} bytes left over)")


def _check_prelude(buffer: bytearray | memoryview, start: int, total: int, headers_length: int) -> None:
    if total > _MAX_MESSAGE or headers_length > _MAX_HEADERS or total < _PRELUDE + _CRC + headers_length:
        raise EventStreamError(f"impossible event stream message: length {total}, headers {headers_length}")
    expected = _U32.unpack_from(buffer, start + 8)[0]
    if zlib.crc32(buffer[start:start + 8]) != expected:
        raise EventStreamError("event stream prelude CRC mismatch")


def _decode_message(view: memoryview, total: int, headers_length: int) -> Frame:
    try:
        _check_prelude(view, 0, total, headers_length)
        expected = _U32.unpack_from(view, total - _CRC)[0]
        if zlib.crc32(view[:total - _CRC]) != expected:
            raise EventStreamError("event stream message CRC mismatch")
        headers = _headers(view[_PRELUDE:_PRELUDE + headers_length])
        return Frame(headers, bytes(view[_PRELUDE + headers_length:total - _CRC]))
    finally:
        view.release()  # the buffer is trimmed next: no view of it may stay exported


def _headers(view: memoryview) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    offset = 0
    end = len(view)
    try:
        while offset < end:
            name_length = view[offset]
            name = bytes(view[offset + 1:offset + 1 + name_length]).decode("utf-8")
            offset += 1 + name_length
            kind = view[offset]
            offset += 1
            value: Any
            if kind == 0 or kind == 1:
                value = kind == 0
            elif kind in _FIXED:
                width, fmt = _FIXED[kind]
                value = struct.unpack_from(fmt, view, offset)[0]
                offset += width
            elif kind == 6 or kind == 7:
                length = _U16.unpack_from(view, offset)[0]
                raw = bytes(view[offset + 2:offset + 2 + length])
                if len(raw) != length:
                    raise EventStreamError("event stream header value is truncated")
                value = raw.decode("utf-8") if kind == 7 else raw
                offset += 2 + length
            elif kind == 9:
                value = bytes(view[offset:offset + 16])
                offset += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event stream headers: {exc}") from exc
    if offset != end:
        raise EventStreamError("event stream headers overrun their length")
    return headers
