"""Timeouts as layers: the attempt, the first token, the gap between chunks, and the request's deadline over all.

None of them replaces another: each wait for a chunk is bounded by the smaller of its own limit and the time left
before the deadline. A first token that is late, or a stream that stalls, is a retryable
:class:`~spoon_llm.errors.RequestTimeoutError` (before anything reached the caller the manager retries or falls
back; after, it is an interruption); the deadline running out is final.

A route (``[models.NAME]``) may bound its requests further (:class:`RouteTimeouts`): its values are caps, so the
tightest layer always wins and no route can lengthen what a provider or a call allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RequestTimeoutError, ValidationError

if TYPE_CHECKING:
    from ..config.models import ProviderConfig, RouteConfig

__all__ = ["RouteTimeouts", "pop_stream_options", "stream_timeout_error", "stream_timeouts"]

_OPTIONS = ("first_token_timeout", "stream_idle_timeout")


def pop_stream_options(kwargs: dict[str, Any]) -> dict[str, float] | None:
    """Take ``first_token_timeout=`` / ``stream_idle_timeout=`` (seconds) out of a call's keywords."""
    if "first_token_timeout" not in kwargs and "stream_idle_timeout" not in kwargs:
        return None
    options: dict[str, float] = {}
    for name in _OPTIONS:
        value = kwargs.pop(name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValidationError(f"{name}={value!r}: give a positive number of seconds")
        options[name] = float(value)
    return options


@dataclass(frozen=True)
class RouteTimeouts:
    """A route's caps, in seconds (``None``: the route adds no bound of that kind).

    ``timeout`` bounds each attempt made for the route (its limiter wait and provider set-up included), on top of
    the provider's (or call's) ``timeout``; ``request_timeout`` bounds a request that starts on the route, on
    top of the call's ``deadline`` (else the configuration's ``request_timeout``); ``first_token_timeout`` and
    ``stream_idle_timeout`` bound a stream's waits on top of the call's or provider's.
    """

    timeout: float | None = None
    first_token_timeout: float | None = None
    stream_idle_timeout: float | None = None
    request_timeout: float | None = None

    @classmethod
    def of(cls, route: RouteConfig) -> RouteTimeouts | None:
        """The caps a route's configuration sets, or ``None`` when it sets none (the common case)."""
        caps = cls(route.timeout, route.first_token_timeout, route.stream_idle_timeout, route.request_timeout)
        return None if caps == _NO_CAPS else caps

    def deadline(self, deadline: float | None) -> float | None:
        """The request's deadline in seconds from now: the given one, cut to the route's ``request_timeout``."""
        cap = self.request_timeout
        if cap is None:
            return deadline
        return cap if deadline is None or deadline <= 0 else min(deadline, cap)

    def attempt(self, left: float | None) -> float | None:
        """An attempt's bound: the time left before the deadline, cut to the route's ``timeout``."""
        cap = self.timeout
        if cap is None:
            return left
        return cap if left is None else min(left, cap)


_NO_CAPS = RouteTimeouts()


def stream_timeouts(config: ProviderConfig, options: dict[str, float] | None,
                    route: RouteTimeouts | None = None) -> tuple[float, float]:
    """``(first token, between chunks)`` in seconds: the call's, else the provider's, else its ``timeout``.

    ``route``: the caps of the route the attempt was made for (``Slot.route``); each wait is the smaller.
    """
    idle = (options or {}).get("stream_idle_timeout") or config.stream_idle_timeout or config.timeout
    first = (options or {}).get("first_token_timeout") or config.first_token_timeout or idle
    if route is not None:
        first = min(first, route.first_token_timeout or math.inf)
        idle = min(idle, route.stream_idle_timeout or math.inf)
    return first, idle


def stream_timeout_error(limit: float, left: float, started: bool, provider: str,
                         model: str | None) -> RequestTimeoutError:
    """The error for a chunk that did not come in time (``left``: the deadline's time when the wait began).

    Whose limit ran out decides whether it may be retried: the stream's own, or the request's deadline.
    """
    if left > limit:
        what = f"the stream stalled: no chunk for {limit:g}s" if started else f"no first token within {limit:g}s"
        return RequestTimeoutError(what, provider=provider, model=model, retryable=True)
    return RequestTimeoutError("request deadline reached during the stream", provider=provider, model=model,
                               retryable=False)
