"""HTTP/1.1 response framing: status lines, headers, chunked SSE bodies, request ids.

Kept apart from the protocol so that vendor modules build :class:`Response` objects without
knowing about sockets, and so that everything per-request here is a few string joins.
"""

from __future__ import annotations

import itertools
import os
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._faults import Fault

JSON = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"
SSE = "text/event-stream; charset=utf-8"

_STATUS_LINES: dict[int, bytes] = {}
_date_cache: tuple[int, str] = (0, "")


def status_line(status: int) -> bytes:
    """Return the ``HTTP/1.1 <status> <reason>`` line with its CRLF, cached per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = {529: "Site is overloaded"}.get(status, "Unknown")
        line = f"HTTP/1.1 {status} {reason}\r\n".encode()
        _STATUS_LINES[status] = line
    return line


def _date() -> str:
    # Formatting a date costs more than a request's header work: refresh it once per second.
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class Response:
    """One answer: status, headers, and either a whole body or a list of SSE frames.

    ``events`` (when not ``None``) are complete SSE frames sent with chunked transfer encoding,
    one chunk per frame; ``fault`` carries the timing/connection faults the protocol applies.
    """

    __slots__ = ("status", "headers", "body", "events", "fault")

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        events: list[bytes] | None = None,
        fault: Fault | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.events = events
        self.fault = fault

    def head(self, keep_alive: bool) -> bytes:
        """Render the status line and headers (with length or chunked framing)."""
        parts = [f"{name}: {value}\r\n" for name, value in self.headers]
        parts.append(f"date: {_date()}\r\n")
        if self.events is None:
            parts.append(f"content-length: {len(self.body)}\r\n")
        else:
            parts.append("transfer-encoding: chunked\r\ncache-control: no-cache\r\n")
        if not keep_alive:
            parts.append("connection: close\r\n")
        parts.append("\r\n")
        return status_line(self.status) + "".join(parts).encode()

    def encode(self, keep_alive: bool) -> bytes:
        """Render the whole response, stream frames included, as one buffer."""
        if self.events is None:
            return self.head(keep_alive) + self.body
        return self.head(keep_alive) + b"".join(map(chunk, self.events)) + LAST_CHUNK


LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """Frame ``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_event(data: str, event: str | None = None, *, crlf: bool = False) -> bytes:
    """Frame one SSE event (``event:`` line optional); ``crlf`` uses CRLF line ends like Gemini."""
    nl = "\r\n" if crlf else "\n"
    head = f"event: {event}{nl}" if event is not None else ""
    if "\n" in data:
        body = "".join(f"data: {line}{nl}" for line in data.split("\n"))
    else:
        body = f"data: {data}{nl}"
    return (head + body + nl).encode()


class IdSource:
    """Unique ids for requests and generated objects: a per-server salt plus a counter."""

    def __init__(self) -> None:
        self._salt = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        """Return a fresh 20-character lower-case hex/alnum token."""
        return f"{self._salt}{next(self._counter):012x}"


class Ctx:
    """Per-request context handed to the wire modules: ids and the creation time."""

    __slots__ = ("token", "ids", "created")

    def __init__(self, token: str, ids: IdSource, created: int) -> None:
        self.token = token  # unique per request; vendor modules shape ids from it
        self.ids = ids
        self.created = created
