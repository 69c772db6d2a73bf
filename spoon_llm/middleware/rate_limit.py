"""Rate-limit middleware: holds or refuses an attempt when its deployment (API key) is out of quota.

A refusal is a :class:`~spoon_llm.errors.RateLimitError` raised before the call, so the manager moves to another
deployment without counting it against this one's health. After the call, token reservations are settled to the
real usage (refunded on failure), a provider 429 cools the key down for its Retry-After, and the provider's
rate-limit headers (``response.metadata["rate_limit_headers"]`` or the error's ``headers``) pace the key.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..tokens._request import DEFAULT_MAX_TOKENS, request_tokens
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..ratelimit.limiter import RateLimiter
    from ..types import TokenUsage

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(Middleware):
    """Per-deployment limits through a :class:`~spoon_llm.ratelimit.RateLimiter`."""

    name = "rate_limit"

    def __init__(self, limiter: RateLimiter, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.limiter = limiter
        self.default_max_tokens = default_max_tokens

    def before_attempt(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Wait for (or refuse) quota on the attempt's deployment.

        With the memory store and room left, the permit is taken here and nothing is returned; otherwise the
        returned awaitable waits (or raises :class:`~spoon_llm.errors.RateLimitError`).
        """
        limiter = self.limiter
        deployment = ctx.deployment
        tokens = ctx.tokens  # estimated once per attempt, usually by the budget guard
        if tokens is None and limiter.needs_tokens(deployment):
            tokens = request_tokens(ctx, self.default_max_tokens)
        input_tokens, output_tokens = tokens if tokens is not None else (0, 0)
        permit = limiter.acquire_now(deployment, input_tokens, output_tokens)
        if permit is None:  # a shared store, or no room right now: wait or refuse
            return self._acquire(ctx, input_tokens, output_tokens)
        ctx.permit = permit
        return None

    async def _acquire(self, ctx: AttemptContext, input_tokens: int, output_tokens: int) -> None:
        deployment = ctx.deployment
        ctx.permit = await self.limiter.acquire(deployment, input_tokens=input_tokens, output_tokens=output_tokens,
                                                model=ctx.model or deployment.model)

    def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                      error: LLMError | None = None) -> Awaitable[None] | None:
        """Settle token reservations, cool down on 429, learn from the provider's headers."""
        limiter = self.limiter
        permit = ctx.permit
        if not limiter.store.sync:
            if error is not None or (permit is not None and (permit.holds or (permit.slots and not ctx.sent))):
                return self._after(ctx, response, usage, error)
            # A shared store, but nothing held to settle or give back (no limits on the key): no round trip.
            ctx.permit = None
            if permit is not None:
                permit.done = True
        elif permit is not None:
            ctx.permit = None
            if not ctx.sent and permit.slots:
                limiter.unsend(permit)  # refused or cancelled before it went out: the slot was never used
            if usage is not None or error is not None or response is None:
                # No usage after an error, or no answer at all (cancelled): refunded.
                limiter.settle_now(permit, usage)
            else:
                permit.done = True  # an answer without usage: the reservation stays as the best guess
        if error is not None:
            return limiter.report_error(ctx.deployment, error)
        metadata = getattr(response, "metadata", None)
        if metadata:
            headers = metadata.get("rate_limit_headers") or metadata.get("headers")
            if headers:
                limiter.observe(ctx.deployment, headers)
        return None

    async def _after(self, ctx: AttemptContext, response: Any, usage: TokenUsage | None,
                     error: LLMError | None) -> None:
        # A shared store: every adjustment is a round trip.
        limiter = self.limiter
        permit = ctx.permit
        ctx.permit = None
        if permit is not None:
            pending = limiter.unsend(permit) if not ctx.sent and permit.slots else None
            if pending is not None:  # refused or cancelled before it went out: the slot was never used
                await pending
            if usage is not None:
                await limiter.settle(permit, usage)
            elif error is not None or response is None:  # failed, or cancelled before an answer
                await limiter.refund(permit)
            else:
                permit.done = True
        if error is not None:
            await limiter.report_error(ctx.deployment, error)
            return
        metadata = getattr(response, "metadata", None)
        if metadata:
            headers = metadata.get("rate_limit_headers") or metadata.get("headers")
            if headers:
                limiter.observe(ctx.deployment, headers)

    def status(self) -> dict[str, Any]:
        """Per deployment: limits, admissions, refusals, waits, cool-downs, the provider's last word."""
        return self.limiter.status()
