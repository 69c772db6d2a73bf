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

    A piece that holds whole messages (the usual case: the server writes one message per chunk) is decoded in
    place; only a message split across pieces is buffered, and the buffer is joined once the message is whole.
    """

    __slots__ = ("_buffer", "_need")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need = _PRELUDE  # bytes the buffer must hold before it is worth decoding again

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return the messages it completed, in order."""
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        frames: list[Frame] = []
        start = 0
        size = len(data)
        while size - start >= _PRELUDE:
            total, headers_length = _PRELUDE_FIELDS.unpack_from(data, start)
            # Checked as soon as the prelude is here, so a corrupt length fails now, not after 16 MiB.
            _check_prelude(data, start, total, headers_length)
            if size - start < total:
                self._need = total
                break
            frames.append(_decode_message(data, start, total, headers_length))
            start += total
        else:
            self._need = _PRELUDE
        if start < size:
            buffer += data[start:]
        return frames

    def close(self) -> None:
        """Check the body ended on a message boundary."""
        if self._buffer:
            left = len(self._buffer)
            self._buffer.clear()
            raise EventStreamError(f"the event stream ended inside a message ({left} bytes left over)")


def _check_prelude(data: bytes, start: int, total: int, headers_length: int) -> None:
    if total > _MAX_MESSAGE or headers_length > _MAX_HEADERS or total < _PRELUDE + _CRC + headers_length:
        raise EventStreamError(f"impossible event stream message: length {total}, headers {headers_length}")
    if zlib.crc32(data[start:start + 8]) != _U32.unpack_from(data, start + 8)[0]:
        raise EventStreamError("event stream prelude CRC mismatch")


def _decode_message(data: bytes, start: int, total: int, headers_length: int) -> Frame:
    end = start + total
    with memoryview(data) as view:  # the CRC of a large payload without copying it
        crc = zlib.crc32(view[start:end - _CRC])
    if crc != _U32.unpack_from(data, end - _CRC)[0]:
        raise EventStreamError("event stream message CRC mismatch")
    body = start + _PRELUDE + headers_length
    return Frame(_headers(data, start + _PRELUDE, body), data[body:end - _CRC])


def _headers(data: bytes, offset: int, end: int) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    try:
        while offset < end:
            name_end = offset + 1 + data[offset]
            name = data[offset + 1:name_end].decode("utf-8")
            kind = data[name_end]
            offset = name_end + 1
            value: Any
            if kind == 7 or kind == 6:  # string (every Bedrock header) or byte array
                length = (data[offset] << 8) | data[offset + 1]
                raw = data[offset + 2:offset + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("event stream header value is truncated")
                value = raw.decode("utf-8") if kind == 7 else raw
                offset += 2 + length
            elif kind == 0 or kind == 1:
                value = kind == 0
            elif kind in _FIXED:
                width, fmt = _FIXED[kind]
                value = struct.unpack_from(fmt, data, offset)[0]
                offset += width
            elif kind == 9:
                value = data[offset:offset + 16]
                offset += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event stream headers: {exc}") from exc
    if offset != end:
        raise EventStreamError("event stream headers overrun their length")
    return headers
