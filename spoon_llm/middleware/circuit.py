"""Sharing circuit breakers across processes: an open circuit in one process keeps the others away too.

Each process keeps its own :class:`~spoon_llm.routing.circuit.CircuitBreaker` per deployment, fed by its own
traffic. This middleware publishes an opening to the shared state store as a cool-down (``circuit:<deployment>``,
lasting the breaker's cooldown), and before every attempt checks that cool-down: while another process has the
deployment's circuit open, this one refuses the attempt locally (the manager moves to the next candidate at once,
without counting it against the deployment's health). When the cool-down ends, probing resumes as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import ProviderUnavailableError
from ..routing.circuit import CircuitState
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..state.base import StateStore
    from ..types import TokenUsage

__all__ = ["SharedCircuitMiddleware"]


class SharedCircuitMiddleware(Middleware):
    """Publishes circuit openings to a shared store and honours the openings other processes published."""

    name = "shared_circuit"

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._published: dict[str, float] = {}
        self.refused = 0

    @staticmethod
    def _key(deployment: str) -> str:
        return f"circuit:{deployment}"

    def before_attempt(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Refuse the attempt while another process holds the deployment's circuit open.

        Answered in place when the store knows the cool-down without a round trip (Redis: its in-process mirror);
        otherwise the returned awaitable asks the store.
        """
        key = self._key(ctx.deployment.name)
        remaining = self.store.cooldown_known(key)
        if remaining is None:
            return self._check(ctx, key)
        if remaining > 0:
            raise self._refusal(ctx, remaining)
        return None

    async def _check(self, ctx: AttemptContext, key: str) -> None:
        remaining = await self.store.cooldown_remaining(key)
        if remaining > 0:
            raise self._refusal(ctx, remaining)

    def _refusal(self, ctx: AttemptContext, remaining: float) -> ProviderUnavailableError:
        self.refused += 1
        return ProviderUnavailableError(
            f"deployment {ctx.deployment.name!r} has an open circuit in another process for {remaining:.1f}s more",
            provider=ctx.provider, model=ctx.effective_model, retry_after=remaining, retryable=False,
        )

    def after_attempt(
        self,
        ctx: AttemptContext,
        *,
        response: Any = None,
        usage: TokenUsage | None = None,
        error: LLMError | None = None,
    ) -> Awaitable[None] | None:
        """Publish the deployment's circuit when this attempt opened it (the awaitable that does; else ``None``)."""
        if error is None:
            return None
        circuit = ctx.deployment.circuit
        retry_at = circuit.retry_at
        if retry_at is None or circuit.state is not CircuitState.OPEN:
            return None
        name = ctx.deployment.name
        if self._published.get(name) == retry_at:
            return None  # this opening is already published
        self._published[name] = retry_at
        return self.store.cooldown_set(self._key(name), circuit.cooldown)

    def status(self) -> dict[str, Any]:
        """Openings published and attempts refused because of another process's open circuit."""
        return {"store": self.store.name, "published": len(self._published), "refused": self.refused}
