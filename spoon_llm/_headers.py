"""Reading retry and rate-limit information out of HTTP response headers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

__all__ = ["pacing_headers", "parse_retry_after", "rate_limit_headers"]

_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after", "x-should-retry")


#: The longest wait a ``Retry-After`` is read as: a far-future date or a huge number is capped here.
MAX_RETRY_AFTER = 3600.0


def _wait(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or negative: ignored
        return None
    return min(seconds, MAX_RETRY_AFTER)


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after`` as seconds or an HTTP date.

    Returns ``None`` when no usable header is present (negative, past or unparseable values are ignored); values
    over :data:`MAX_RETRY_AFTER` (a date in the year 99999 included) are capped to it. It never raises: a header
    is the server's word, and a garbled one must not cost the request its fallback.
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()} if not hasattr(headers, "get_list") else headers
    value = lowered.get("retry-after-ms")
    if value:
        try:
            waited = _wait(float(value) / 1000.0)
        except (ValueError, TypeError):
            waited = None
        if waited is not None:
            return waited
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return _wait(float(value))
    except (ValueError, TypeError):
        pass
    try:
        parsed = email.utils.parsedate_tz(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    except (ValueError, OverflowError):  # a year the platform's clock cannot hold: far away
        return MAX_RETRY_AFTER if parsed[0] > 9999 else None
    return _wait(seconds) if seconds >= 0 else None


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
