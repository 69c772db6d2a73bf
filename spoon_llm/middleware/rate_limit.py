"""Rate-limit middleware: holds or refuses an attempt when its deployment (API key) is out of quota.

A refusal is a :class:`~spoon_llm.errors.RateLimitError` raised before the call, so the manager moves to another
deployment without counting it against this one's health. After the call, token reservations are settled to the
real usage (refunded on failure), a provider 429 cools the key down for its Retry-After, and the provider's
rate-limit headers (``response.metadata["rate_limit_headers"]`` or the error's ``headers``) pace the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..tokens._request import DEFAULT_MAX_TOKENS, request_tokens
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..ratelimit.limiter import Permit, RateLimiter
    from ..types import TokenUsage

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware(Middleware):
    """Per-deployment limits through a :class:`~spoon_llm.ratelimit.RateLimiter`."""

    name = "rate_limit"

    def __init__(self, limiter: RateLimiter, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.limiter = limiter
        self.default_max_tokens = default_max_tokens

    async def before_attempt(self, ctx: AttemptContext) -> None:
        """Wait for (or refuse) quota on the attempt's deployment."""
        limiter = self.limiter
        deployment = ctx.deployment
        if limiter.needs_tokens(deployment):
            input_tokens, output_tokens = request_tokens(ctx, self.default_max_tokens)
        else:
            input_tokens = output_tokens = 0
        permit = limiter.acquire_now(deployment, input_tokens, output_tokens)
        if permit is None:  # a shared store, or no room right now: wait or refuse
            permit = await limiter.acquire(deployment, input_tokens=input_tokens, output_tokens=output_tokens,
                                           model=ctx.model or deployment.model)
        ctx.state["rate_limit"] = permit

    async def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                            error: LLMError | None = None) -> None:
        """Settle token reservations, cool down on 429, learn from the provider's headers."""
        permit: Permit | None = ctx.state.pop("rate_limit", None)
        if permit is not None:
            if usage is not None:
                if not self.limiter.settle_now(permit, usage):
                    await self.limiter.settle(permit, usage)
            elif error is not None:
                await self.limiter.refund(permit)
            else:
                permit.done = True  # an answer without usage: the reservation stays as the best guess
        if error is not None:
            await self.limiter.report_error(ctx.deployment, error)
            return
        metadata = getattr(response, "metadata", None)
        if metadata:
            headers = metadata.get("rate_limit_headers") or metadata.get("headers")
            if headers:
                self.limiter.observe(ctx.deployment, headers)

    def status(self) -> dict[str, Any]:
        """Per deployment: limits, admissions, refusals, waits, cool-downs, the provider's last word."""
        return self.limiter.status()
