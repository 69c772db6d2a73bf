r"""Server-sent events over raw bytes: split on blank lines ourselves, hand each event's data on undecoded.

One parser serves every vendor and both transports (the SDKs' byte streams and our own aiohttp one), so a stream
is framed the same way whoever moved its bytes. It follows the SSE specification where it matters for LLM APIs:
LF, CRLF and bare CR line ends (a CRLF split across two reads included), comment lines (``: keep-alive``,
OpenRouter's ``: OPENROUTER PROCESSING``), multi-line ``data`` joined with ``\n``, one space after the colon
dropped, ``id``/``retry`` ignored. The data stays bytes so that the caller decodes each event's JSON exactly once
(``orjson.loads`` takes bytes as they are).

It is linear in the bytes whatever the chunking: an event still incomplete is kept as a list of pieces and only
the new piece is searched for the blank line that ends it (a 48 MB event sent in 64 KiB reads once cost 12 s of
re-scanning a growing buffer). One event is capped at ``max_event_bytes`` and a whole stream at
``max_stream_bytes``; past either, or on an event name that is not UTF-8, it raises a typed error
(:class:`~spoon_llm.errors.ResponseTooLargeError`, :class:`~spoon_llm.errors.ResponseParsingError`).

Byte searches use ``find`` rather than ``in``: on CPython ``sub in data`` first tries ``sub`` as an integer and
builds (then clears) a formatted ``TypeError``, which cost more than the search (~2,300 instructions per test).
"""

from __future__ import annotations

from ..errors import ResponseParsingError, ResponseTooLargeError, excerpt

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DEFAULT_MAX_STREAM_BYTES", "SSEParser", "TextSSEParser"]

Event = tuple[str | None, bytes]

#: One event's cap: large enough for a multimodal answer carrying a base64 image of ~24 MB.
DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024
#: A whole stream's cap.
DEFAULT_MAX_STREAM_BYTES = 512 * 1024 * 1024


class SSEParser:
    """Incremental parser: ``feed`` bytes in any chunking, get the ``(event, data)`` pairs they complete.

    ``event`` is the event name (``None`` when the stream names none), ``data`` the raw payload bytes. ``close``
    returns the last event when the body ended without its blank line (the caller decides whether a half event
    counts: a cut JSON document will not decode). ``provider`` and ``model`` label the errors it raises.

    Example::

        parser = SSEParser(max_event_bytes=config.max_event_bytes, provider="openai", model=model)
        async for raw in response.content.iter_any():
            for _event, data in parser.feed(raw):
                handle(orjson.loads(data))
        for _event, data in parser.close():
            ...
    """

    __slots__ = ("_cr", "_pending", "_pending_size", "_total", "max_event_bytes", "max_stream_bytes", "model",
                 "provider")

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES, provider: str | None = None,
                 model: str | None = None) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_stream_bytes = max_stream_bytes
        self.provider = provider
        self.model = model
        self._pending: list[bytes] = []  # the pieces of the event not yet ended (never holds a blank line)
        self._pending_size = 0
        self._total = 0
        self._cr = False  # the last piece ended with a CR: a LF opening the next piece belongs to it

    def _too_large(self, what: str, limit: int, setting: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{what} exceeds {limit} bytes; raise the provider's {setting} if such answers are expected",
            provider=self.provider, model=self.model, retryable=False)

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse what ``chunk`` completes; the rest waits for the next chunk."""
        size = len(chunk)
        self._total += size
        if self._total > self.max_stream_bytes:
            raise self._too_large("the streamed answer", self.max_stream_bytes, "max_stream_bytes")
        if chunk[-2:] == b"\n\n" and chunk[:6] == b"data: " and not self._pending and not self._cr \
                and size <= self.max_event_bytes:
            # The common read: exactly one event of one data line (no other line end in it, CR included).
            data = chunk[6:-2]
            if data.find(b"\n") < 0 and data.find(b"\r") < 0:
                return [(None, data)]
        if self._cr or chunk.find(b"\r") >= 0:
            if self._cr and chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            # Only the LF of a CRLF whose CR came last time: nothing new, and an empty piece kept in ``pending``
            # would hide the line end before it from the blank-line check of the next read.
            return []
        pending = self._pending
        if pending:
            end = chunk.rfind(b"\n\n")
            if end >= 0:
                pending.append(chunk[:end])
                block = b"".join(pending)
                rest = chunk[end + 2:]
            elif chunk[:1] == b"\n" and pending[-1][-1:] == b"\n":  # the blank line straddles two reads
                block = b"".join(pending)
                rest = chunk[1:]
            else:
                pending.append(chunk)
                self._pending_size += len(chunk)
                if self._pending_size > self.max_event_bytes:
                    raise self._too_large("one streamed event", self.max_event_bytes, "max_event_bytes")
                return []
        else:
            end = chunk.rfind(b"\n\n")
            if end < 0:
                if chunk:
                    self._keep(chunk)
                return []
            block = chunk[:end]
            rest = chunk[end + 2:]
        self._pending = []
        self._pending_size = 0
        if rest:
            self._keep(rest)
        return self._frames(block)

    def _keep(self, piece: bytes) -> None:
        if len(piece) > self.max_event_bytes:
            raise self._too_large("one streamed event", self.max_event_bytes, "max_event_bytes")
        self._pending.append(piece)
        self._pending_size = len(piece)

    def _frames(self, block: bytes) -> list[Event]:
        limit = self.max_event_bytes
        if len(block) > limit and any(len(frame) > limit for frame in block.split(b"\n\n")):
            raise self._too_large("one streamed event", limit, "max_event_bytes")
        events: list[Event] = []
        for frame in block.split(b"\n\n"):
            if frame[:6] == b"data: " and frame.find(b"\n") < 0:  # the common shape: one data line
                events.append((None, frame[6:]))
                continue
            event = self._parse_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _parse_frame(self, frame: bytes) -> Event | None:
        """One event from the lines between two blank lines (``None`` when it has no data: a comment, an id...)."""
        if frame[:7] == b"event: ":
            # Anthropic's shape, "event: x\ndata: {...}", without the general loop.
            head, sep, rest = frame.partition(b"\n")
            if sep and rest[:6] == b"data: " and rest.find(b"\n") < 0:
                return self._name(head[7:]), rest[6:]
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
                event = self._name(value)
        if not data:
            return None
        return event, data[0] if len(data) == 1 else b"\n".join(data)

    def _name(self, raw: bytes) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise ResponseParsingError(f"a stream event name is not UTF-8: {excerpt(raw)}", provider=self.provider,
                                       model=self.model) from exc

    def close(self) -> list[Event]:
        """End of input: the last event if the body stopped before its closing blank line."""
        rest = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._cr = False
        if rest.strip(b"\r\n"):
            return self._frames(rest.rstrip(b"\n"))
        return []


class TextSSEParser(SSEParser):
    """The same parser handing data on as text (for callers that want ``str``; the hot paths use bytes)."""

    __slots__ = ()

    def _text(self, events: list[Event]) -> list[tuple[str | None, str]]:
        try:
            return [(event, data.decode()) for event, data in events]
        except UnicodeDecodeError as exc:
            raise ResponseParsingError(f"a stream event is not UTF-8: {exc}", provider=self.provider,
                                       model=self.model) from exc

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:  # type: ignore[override]
        """Parse what ``chunk`` completes, data decoded as UTF-8."""
        return self._text(super().feed(chunk))

    def close(self) -> list[tuple[str | None, str]]:  # type: ignore[override]
        """End of input, data decoded as UTF-8."""
        return self._text(super().close())
