"""Reading the providers' own rate-limit headers, and pacing a key by them before it ever answers 429.

OpenAI (and OpenAI-compatible servers) send ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with resets
as durations (``1s``, ``6m0s``, ``120ms``); Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,
output-tokens}-{limit,remaining,reset}`` with resets as RFC 3339 times. ``retry-after-ms`` / ``retry-after``
are read as well.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .._headers import parse_retry_after

__all__ = ["HeaderPacer", "RateLimitHeaders", "parse_duration", "parse_rate_limit_headers"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

#: Below this share of the provider's limit left, requests are spaced out evenly until the reset.
LOW_WATERMARK = 0.1


def parse_duration(value: str) -> float | None:
    """Seconds in an OpenAI-style duration (``"6m0s"``, ``"59.6s"``, ``"120ms"``, or a bare number)."""
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _reset_seconds(value: str | None, now: float) -> float | None:
    if not value:
        return None
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(moment.timestamp() - now, 0.0)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass(slots=True)
class RateLimitHeaders:
    """What a response said about the key's limits; resets are seconds from when it was received."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    retry_after: float | None = None

    @property
    def empty(self) -> bool:
        """True when the response carried none of these headers."""
        return self.requests_remaining is None and self.tokens_remaining is None and self.retry_after is None


def parse_rate_limit_headers(headers: Mapping[str, str] | None, *, now: float | None = None) -> RateLimitHeaders:
    """Parse OpenAI-style and Anthropic-style rate-limit headers (names case-insensitive)."""
    if not headers:
        return RateLimitHeaders()
    h = {k.lower(): v for k, v in headers.items()}
    wall = time.time() if now is None else now
    out = RateLimitHeaders(retry_after=parse_retry_after(h, now=wall))
    if "x-ratelimit-remaining-requests" in h or "x-ratelimit-remaining-tokens" in h:
        out.requests_limit = _int(h.get("x-ratelimit-limit-requests"))
        out.requests_remaining = _int(h.get("x-ratelimit-remaining-requests"))
        out.requests_reset = _reset_seconds(h.get("x-ratelimit-reset-requests"), wall)
        out.tokens_limit = _int(h.get("x-ratelimit-limit-tokens"))
        out.tokens_remaining = _int(h.get("x-ratelimit-remaining-tokens"))
        out.tokens_reset = _reset_seconds(h.get("x-ratelimit-reset-tokens"), wall)
        return out
    if "anthropic-ratelimit-requests-remaining" in h or "anthropic-ratelimit-tokens-remaining" in h:
        out.requests_limit = _int(h.get("anthropic-ratelimit-requests-limit"))
        out.requests_remaining = _int(h.get("anthropic-ratelimit-requests-remaining"))
        out.requests_reset = _reset_seconds(h.get("anthropic-ratelimit-requests-reset"), wall)
        # The tightest of the token limits (overall, input, output) is the one that bites first.
        best: tuple[int, int | None, float | None] | None = None
        for kind in ("tokens", "input-tokens", "output-tokens"):
            remaining = _int(h.get(f"anthropic-ratelimit-{kind}-remaining"))
            if remaining is not None and (best is None or remaining < best[0]):
                best = (remaining, _int(h.get(f"anthropic-ratelimit-{kind}-limit")),
                        _reset_seconds(h.get(f"anthropic-ratelimit-{kind}-reset"), wall))
        if best is not None:
            out.tokens_remaining, out.tokens_limit, out.tokens_reset = best
    return out


class HeaderPacer:
    """Per-key pacing from the last rate-limit headers seen, on this process's monotonic clock.

    Between two responses the remaining counts are decremented locally for each request sent, so a burst cannot
    overrun what the provider said was left. When less than :data:`LOW_WATERMARK` of the limit is left, requests
    are spaced evenly over the time to the reset. Stale information (past its reset) is ignored.
    """

    __slots__ = ("requests_left", "requests_limit", "requests_reset_at", "tokens_left", "tokens_reset_at",
                 "last_sent")

    def __init__(self) -> None:
        self.requests_left: int | None = None
        self.requests_limit: int | None = None
        self.requests_reset_at = 0.0
        self.tokens_left: int | None = None
        self.tokens_reset_at = 0.0
        self.last_sent = 0.0

    def observe(self, info: RateLimitHeaders, now: float) -> None:
        """Take in a response's headers."""
        if info.requests_remaining is not None:
            self.requests_left = info.requests_remaining
            self.requests_limit = info.requests_limit
            self.requests_reset_at = now + (info.requests_reset if info.requests_reset is not None else 60.0)
        if info.tokens_remaining is not None:
            self.tokens_left = info.tokens_remaining
            self.tokens_reset_at = now + (info.tokens_reset if info.tokens_reset is not None else 60.0)

    def delay(self, tokens: int, now: float) -> float:
        """Seconds to hold a request needing ``tokens`` back (0 = send now)."""
        wait = 0.0
        left = self.requests_left
        if left is not None and self.requests_reset_at > now:
            until_reset = self.requests_reset_at - now
            if left <= 0:
                wait = until_reset
            elif self.requests_limit and left < self.requests_limit * LOW_WATERMARK:
                gap = until_reset / (left + 1)
                wait = max(self.last_sent + gap - now, 0.0)
        if self.tokens_left is not None and self.tokens_reset_at > now and self.tokens_left < tokens:
            wait = max(wait, self.tokens_reset_at - now)
        return wait

    def sent(self, tokens: int, now: float) -> None:
        """Count a request against the remaining numbers until the next headers arrive."""
        self.last_sent = now
        if self.requests_left is not None and self.requests_reset_at > now:
            self.requests_left -= 1
        if self.tokens_left is not None and self.tokens_reset_at > now:
            self.tokens_left -= tokens

    def snapshot(self, now: float) -> dict[str, float | int | None]:
        """What the provider last said is left (``None`` when unknown or stale)."""
        return {
            "requests_remaining": self.requests_left if self.requests_reset_at > now else None,
            "tokens_remaining": self.tokens_left if self.tokens_reset_at > now else None,
            "requests_reset_in": max(self.requests_reset_at - now, 0.0) if self.requests_left is not None else None,
        }
