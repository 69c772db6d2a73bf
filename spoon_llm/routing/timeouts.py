"""Stream timeouts as layers: the first token, the gap between chunks, and the request's deadline over both.

None of them replaces another: each wait for a chunk is bounded by the smaller of its own limit and the time left
before the deadline. A first token that is late, or a stream that stalls, is a retryable
:class:`~spoon_llm.errors.RequestTimeoutError` (before anything reached the caller the manager retries or falls
back; after, it is an interruption); the deadline running out is final.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import RequestTimeoutError, ValidationError

if TYPE_CHECKING:
    from ..config.models import ProviderConfig

__all__ = ["pop_stream_options", "stream_timeout_error", "stream_timeouts"]

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


def stream_timeouts(config: ProviderConfig, options: dict[str, float] | None) -> tuple[float, float]:
    """``(first token, between chunks)`` in seconds: the call's, else the provider's, else its ``timeout``."""
    idle = (options or {}).get("stream_idle_timeout") or config.stream_idle_timeout or config.timeout
    first = (options or {}).get("first_token_timeout") or config.first_token_timeout or idle
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
