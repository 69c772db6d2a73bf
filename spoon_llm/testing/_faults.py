"""Fault injection: error statuses, slow answers, broken connections and broken bodies.

A :class:`Fault` says what goes wrong; ``ProviderSimulator.fault`` says for which requests
(vendor, model, endpoint) and how often (``times``, ``probability`` with a ``seed``).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """What goes wrong with one response.

    * ``status``: answer with this HTTP status and the vendor's own error body. ``message``,
      ``error_type`` and ``code`` override the vendor-style defaults for that status; 404 defaults
      to the vendor's "model not found" wording. ``context_limit`` turns a 400 into the vendor's
      context-length-exceeded error (``"... N tokens > M maximum"``) with M = ``context_limit``.
    * ``retry_after``: seconds sent as ``retry-after`` (and ``retry-after-ms`` on OpenAI routes).
    * ``delay``: seconds to wait before sending the headers (applies to any answer).
    * ``chunk_delay``: seconds to wait between stream events.
    * ``reset``: reset the connection (TCP RST) instead of answering.
    * ``disconnect_after``: close the connection after N stream events (non-stream answers: after
      the headers and half of the body), without finishing the HTTP message.
    * ``truncate_after``: finish the HTTP message cleanly after N stream events plus half of the
      next one, so the SSE stream lacks its end (no ``[DONE]`` / ``message_stop``); streams only.
    * ``malformed``: status 200 with a JSON body cut in half (streams: one event's data is cut).

    Timing-only faults (``delay``, ``chunk_delay``, ``disconnect_after``, ``truncate_after``)
    apply to whatever the answer would have been: default, scripted or replayed.
    """

    status: int | None = None
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    context_limit: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    reset: bool = False
    disconnect_after: int | None = None
    truncate_after: int | None = None
    malformed: bool = False

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        error_type: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Any HTTP error status with the vendor's error body."""
        return cls(status=status, message=message, error_type=error_type, code=code, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0, message: str | None = None) -> Fault:
        """429 with ``retry-after`` (OpenAI routes also get ``retry-after-ms``)."""
        return cls(status=429, retry_after=retry_after, message=message)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401: invalid API key."""
        return cls(status=401)

    @classmethod
    def forbidden(cls) -> Fault:
        """403: the key may not use this model or resource."""
        return cls(status=403)

    @classmethod
    def model_not_found(cls) -> Fault:
        """404 naming the requested model, in the vendor's wording."""
        return cls(status=404)

    @classmethod
    def context_length_exceeded(cls, limit: int = 128_000) -> Fault:
        """400 in the vendor's context-length wording, claiming the prompt exceeds ``limit``."""
        return cls(status=400, context_limit=limit)

    @classmethod
    def server_error(cls) -> Fault:
        """500 internal error."""
        return cls(status=500)

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        """503 service unavailable."""
        return cls(status=503, retry_after=retry_after)

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> Fault:
        """529 ``overloaded_error`` (Anthropic's status; other vendors get the same status)."""
        return cls(status=529, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before sending the headers."""
        return cls(delay=seconds)

    @classmethod
    def slow_stream(cls, seconds: float) -> Fault:
        """Wait ``seconds`` between stream events."""
        return cls(chunk_delay=seconds)

    @classmethod
    def connection_reset(cls) -> Fault:
        """Reset the connection before any header is sent."""
        return cls(reset=True)

    @classmethod
    def disconnect(cls, after: int = 2) -> Fault:
        """Drop the connection mid-stream after ``after`` events."""
        return cls(disconnect_after=after)

    @classmethod
    def truncated_stream(cls, after: int = 2) -> Fault:
        """End the SSE body cleanly but early, in the middle of an event."""
        return cls(truncate_after=after)

    @classmethod
    def malformed_json(cls) -> Fault:
        """A 200 answer whose JSON is cut in half."""
        return cls(malformed=True)

    @property
    def replaces_answer(self) -> bool:
        """True when the fault decides the body (error status, reset or malformed JSON)."""
        return self.status is not None or self.reset or self.malformed

    @property
    def affects_delivery(self) -> bool:
        """True when the fault changes how bytes are sent (timing, reset, early end of the body)."""
        return (
            self.delay > 0
            or self.chunk_delay > 0
            or self.reset
            or self.disconnect_after is not None
            or self.truncate_after is not None
        )


class _FaultEntry:
    __slots__ = ("vendor", "model", "endpoint", "fault", "remaining", "probability", "rng")

    def __init__(
        self,
        vendor: str | None,
        model: str | None,
        endpoint: str | None,
        fault: Fault,
        remaining: int | None,
        probability: float,
        seed: int | None,
    ) -> None:
        self.vendor = vendor
        self.model = model
        self.endpoint = endpoint
        self.fault = fault
        self.remaining = remaining
        self.probability = probability
        # One generator per entry, so a seeded entry fires identically however others are set.
        self.rng = random.Random(seed)


class FaultBook:
    """Registered faults, checked in the order they were added (thread-safe)."""

    def __init__(self) -> None:
        self._entries: list[_FaultEntry] = []
        self._lock = threading.Lock()

    def add(
        self,
        vendor: str | None,
        fault: Fault,
        *,
        model: str | None,
        endpoint: str | None,
        times: int | None,
        probability: float,
        seed: int | None,
    ) -> None:
        """Register ``fault``; ``times=None`` keeps it for every later matching request."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        entry = _FaultEntry(vendor, model, endpoint, fault, times, probability, seed)
        with self._lock:
            self._entries.append(entry)

    def take(self, vendor: str, model: str | None, endpoint: str) -> Fault | None:
        """Return the first fault that matches the request and fires, using up one of its turns."""
        if not self._entries:  # the common case, checked without the lock
            return None
        with self._lock:
            for i, entry in enumerate(self._entries):
                if entry.vendor is not None and entry.vendor != vendor:
                    continue
                if entry.model is not None and entry.model != model:
                    continue
                if entry.endpoint is not None and entry.endpoint != endpoint:
                    continue
                if entry.probability < 1.0 and entry.rng.random() >= entry.probability:
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._entries[i]
                return entry.fault
        return None

    def clear(self) -> None:
        """Forget every registered fault."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
