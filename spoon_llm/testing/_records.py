"""Records of the requests the simulator received, with credentials masked at capture time."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

# Header names (lower case, as bytes straight from the parser) whose values are credentials.
SECRET_HEADERS = frozenset({b"authorization", b"proxy-authorization", b"x-api-key", b"x-goog-api-key", b"api-key"})
SECRET_QUERY_PARAMS = frozenset({"key", "api_key", "api-key"})


def mask_secret(value: str) -> str:
    """Hide a credential, keeping an auth scheme and the last 4 characters of long values.

    The suffix lets a test tell which of several keys was used without the key being stored.
    """
    prefix = ""
    head = value[:7].lower()
    if head.startswith("bearer "):
        prefix, value = value[:7], value[7:]
    elif head.startswith("basic "):
        prefix, value = value[:6], value[6:]
    if len(value) >= 12:
        return f"{prefix}***{value[-4:]}"
    return f"{prefix}***"


@dataclass
class RecordedRequest:
    """One request as the simulator received it.

    ``headers`` has lower-case names; credential headers (``authorization``, ``x-api-key``,
    ``x-goog-api-key``, ``api-key``) and the ``key`` query parameter are masked. ``body`` is the
    parsed JSON body (``None`` when there was none, the raw text when it was not JSON).
    ``vendor`` is the vendor whose route was hit (``None`` for unknown routes), ``endpoint`` its
    kind: ``chat``, ``completion``, ``embeddings``, ``count_tokens``, ``models``, ``model`` or
    ``health``; ``stream`` tells whether a stream was asked for.
    """

    method: str
    path: str
    query: dict[str, str]
    raw_headers: list[tuple[bytes, bytes]] = field(repr=False)  # as received, credentials already masked
    body: Any
    vendor: str | None = None
    endpoint: str | None = None
    model: str | None = None
    stream: bool = False
    time: float = 0.0

    @cached_property
    def headers(self) -> dict[str, str]:
        """Headers by lower-case name (decoded on first access: recording stays cheap)."""
        return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.raw_headers}

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name."""
        return self.headers.get(name.lower())


def mask_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Return raw header pairs with credential values masked (a copy only when there is one)."""
    masked: list[tuple[bytes, bytes]] | None = None
    for i, (name, value) in enumerate(raw):
        if name.lower() in SECRET_HEADERS:
            if masked is None:
                masked = list(raw)
            masked[i] = (name, mask_secret(value.decode("latin-1")).encode("latin-1"))
    return raw if masked is None else masked


def parse_query(query: str) -> dict[str, str]:
    """Parse a query string into a dict, masking credential parameters."""
    if not query:
        return {}
    return {k: (mask_secret(v) if k in SECRET_QUERY_PARAMS else v) for k, v in parse_qsl(query, keep_blank_values=True)}


class Recorder:
    """Bounded, thread-safe log of received requests (oldest dropped first)."""

    def __init__(self, max_records: int | None) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=max_records)
        self._lock = threading.Lock()
        self.total = 0  # every request ever recorded, including dropped ones

    def add(self, record: RecordedRequest) -> None:
        """Append a record."""
        with self._lock:
            self._items.append(record)
            self.total += 1

    def snapshot(self) -> list[RecordedRequest]:
        """Return a copy of the records, oldest first."""
        with self._lock:
            return list(self._items)

    def last(self, vendor: str | None = None) -> RecordedRequest | None:
        """Return the newest record, optionally for one vendor."""
        with self._lock:
            for record in reversed(self._items):
                if vendor is None or record.vendor == vendor:
                    return record
        return None

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._items.clear()
            self.total = 0
