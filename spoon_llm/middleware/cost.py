"""Cost accounting middleware: prices every attempt's usage, attaches it to the answer and records it.

``response.cost`` (a :class:`~spoon_llm.types.CostInfo`) is set on whole answers and embeddings; a stream's final
chunk carries it in ``chunk.metadata["cost"]``. The cost is also left in ``ctx.state["cost"]`` for the budget
guard, which runs after this middleware on the way back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..costs.tracker import CostTracker
from ..pricing.book import PriceBook
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..types import CostInfo, TokenUsage

__all__ = ["CostMiddleware", "price_attempt"]


def price_attempt(prices: PriceBook, ctx: AttemptContext, response: Any, usage: TokenUsage | None) -> CostInfo:
    """The cost of one attempt (computed once: later middleware read ``ctx.state["cost"]``)."""
    state = ctx.state
    known: CostInfo | None = state.get("cost")
    if known is not None:
        return known
    deployment = ctx.deployment
    model = getattr(response, "model", None) or ctx.model or deployment.model
    hourly = deployment.config.hourly_rate
    if hourly:
        cost = prices.cost(usage, model, provider_type=deployment.provider_type, provider=deployment.provider_name,
                           deployment=deployment.name, hourly_rate=hourly)
    else:
        known_rates = state.get("rates")  # resolved by the budget guard for the same model: reuse it
        rates = known_rates[1] if known_rates is not None and known_rates[0] == model else (
            prices.for_deployment(deployment, model))
        cost = prices.cost_with(rates, usage, model, deployment.provider_name)
    state["cost"] = cost
    return cost


class CostMiddleware(Middleware):
    """Prices usage with a :class:`PriceBook` and records it in a :class:`CostTracker`.

    Attempts that failed but still reported usage (an interrupted stream) are priced and recorded too: that money
    was spent. ``owns_stores`` lists stores :meth:`aclose` closes.
    """

    name = "cost"

    def __init__(self, tracker: CostTracker | None = None, prices: PriceBook | None = None) -> None:
        self.tracker = tracker if tracker is not None else CostTracker()
        self.prices = prices if prices is not None else PriceBook()
        self.owns_stores: list[Any] = []
        self._loaded = self.tracker.ledger is None

    async def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                            error: LLMError | None = None) -> None:
        """Price the attempt, attach the cost to the answer and record it."""
        if usage is None and response is None:
            return
        tracker = self.tracker
        if not self._loaded:
            self._loaded = True
            await tracker.load()  # earlier spend from the persistent ledger, once
        cost = price_attempt(self.prices, ctx, response, usage)
        if response is not None:
            if hasattr(response, "cost"):
                response.cost = cost
            elif isinstance(getattr(response, "metadata", None), dict):
                response.metadata["cost"] = cost
        deployment = ctx.deployment
        tags = ctx.tags
        u = usage
        row = (tracker.clock(), deployment.provider_name,
               getattr(response, "model", None) or ctx.model or deployment.model or "", deployment.name,
               deployment.key_alias, deployment.provider_type, ctx.operation, ctx.request_id,
               tuple(tags.items()) if tags else (),
               u.input_tokens if u else 0, u.output_tokens if u else 0, u.cached_input_tokens if u else 0,
               u.cache_write_tokens if u else 0, u.reasoning_tokens if u else 0,
               cost.total_cost, cost.currency, cost.unpriced, cost.source, error is None)
        if tracker.ledger is None:
            tracker.add(row)
        else:
            await tracker.record(row)

    def status(self) -> dict[str, Any]:
        """Totals, per-provider costs and price sources."""
        return {**self.tracker.summary(), "prices": self.prices.status()}

    async def aclose(self) -> None:
        """Close the stores this middleware owns (see :func:`~spoon_llm.middleware.defaults.build_middleware`)."""
        for store in self.owns_stores:
            await store.close()
        self.owns_stores.clear()
