"""Reading retry and rate-limit information out of HTTP response headers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

__all__ = ["pacing_headers", "parse_retry_after", "rate_limit_headers"]

_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after", "x-should-retry")


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after`` as seconds or an HTTP date.

    Returns ``None`` when no usable header is present (negative or unparseable values are ignored).
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()} if not hasattr(headers, "get_list") else headers
    value = lowered.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if ms >= 0:
            return ms / 1000.0
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return seconds if seconds >= 0 else None


def rate_limit_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Only the retry and rate-limit headers of a response (never auth or cookies), lower-cased."""
    if not headers:
        return {}
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_RATE_LIMIT_PREFIXES)}


# Present on successful answers of vendors that report their limits (OpenAI-compatible, Anthropic).
_PACING_MARKERS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-input-tokens-remaining",
)


def pacing_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The rate-limit headers of a successful answer, or ``None`` when it carries none.

    Cheap on the hot path: a few case-insensitive lookups first, the full scan only when the vendor reports limits.
    """
    if not headers:
        return None
    for marker in _PACING_MARKERS:
        if marker in headers:
            return rate_limit_headers(headers)
    return None
