"""``max_concurrent_requests``: at most N requests in flight to one provider section; the rest wait their turn.

The older ``spoon_ai.llm`` setting, per provider section. Attempts wait in arrival order for a free slot (no
deadline of their own: the request's deadline bounds the wait) and give it back when they finish, fail or are
cancelled. Slots are counted per event loop, as a manager may be used from several ``asyncio.run()`` calls.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..types import TokenUsage

__all__ = ["ConcurrencyLimitMiddleware"]


class ConcurrencyLimitMiddleware(Middleware):
    """Caps in-flight attempts per provider section (``limits``: section name -> most at once)."""

    name = "concurrency"

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary())
        #: The most attempts seen in flight at once, per provider section.
        self.peak: dict[str, int] = {}
        self._inflight: dict[str, int] = {}

    def _semaphore(self, provider: str, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = {}
        semaphore = slots.get(provider)
        if semaphore is None:
            semaphore = slots[provider] = asyncio.Semaphore(limit)
        return semaphore

    def before_attempt(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Take a slot of the attempt's provider, waiting when all are taken."""
        provider = ctx.deployment.provider_name
        limit = self.limits.get(provider)
        if limit is None:
            return None
        return self._wait(ctx, provider, self._semaphore(provider, limit))

    async def _wait(self, ctx: AttemptContext, provider: str, semaphore: asyncio.Semaphore) -> None:
        await semaphore.acquire()  # cancelled while waiting: nothing was taken
        self._entered(ctx, provider)

    def _entered(self, ctx: AttemptContext, provider: str) -> None:
        ctx.state[self.name] = provider
        count = self._inflight[provider] = self._inflight.get(provider, 0) + 1
        if count > self.peak.get(provider, 0):
            self.peak[provider] = count

    def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                      error: LLMError | None = None) -> None:
        """Give the slot back (once per attempt that took one)."""
        provider = ctx.state.pop(self.name, None)
        if provider is None:
            return
        self._inflight[provider] -= 1
        self._semaphore(provider, self.limits[provider]).release()

    def status(self) -> dict[str, Any]:
        """What ``manager.get_status()`` shows: limits, in flight now and the peak, per provider."""
        return {"limits": dict(self.limits), "inflight": dict(self._inflight), "peak": dict(self.peak)}
