"""Rate limits per deployment (API key): requests and tokens per minute/hour, 429 cool-downs, header pacing.

Strategies: ``sliding_window`` (an exact log of the last window, O(1) amortised per check) and ``token_bucket`` /
``leaky_bucket`` (GCRA: one timestamp per key, O(1)). On exhaustion the limiter waits (bounded, async) or fails
fast with :class:`~spoon_llm.errors.RateLimitError` carrying ``retry_after``.
"""

from __future__ import annotations

from .headers import HeaderPacer, RateLimitHeaders, parse_duration, parse_rate_limit_headers
from .limiter import Permit, RateLimiter
from .settings import LimitSettings, Strategy

__all__ = [
    "HeaderPacer",
    "LimitSettings",
    "Permit",
    "RateLimitHeaders",
    "RateLimiter",
    "Strategy",
    "parse_duration",
    "parse_rate_limit_headers",
]
