"""Cost accounting middleware: prices every attempt's usage, attaches it to the answer and records it.

``response.cost`` (a :class:`~spoon_llm.types.CostInfo`) is set on whole answers and embeddings; a stream's final
chunk carries it in ``chunk.metadata["cost"]``. The cost is also left in ``ctx.cost`` for the budget
guard, which runs after this middleware on the way back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..costs.tracker import CostTracker
from ..pricing.book import PriceBook, priced_cost
from ..state.base import StoreUnavailableError
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..types import CostInfo, TokenUsage

__all__ = ["CostMiddleware", "price_attempt"]

logger = logging.getLogger("spoon_llm.costs")


def price_attempt(prices: PriceBook, ctx: AttemptContext, response: Any, usage: TokenUsage | None) -> CostInfo:
    """The cost of one attempt (computed once: later middleware read ``ctx.cost``)."""
    known = ctx.cost
    if known is not None:
        return known
    return _price(prices, ctx, getattr(response, "model", None) or ctx.model or ctx.deployment.model, usage)


def _price(prices: PriceBook, ctx: AttemptContext, model: str | None, usage: TokenUsage | None) -> CostInfo:
    deployment = ctx.deployment
    hourly = deployment.config.hourly_rate
    if hourly:
        cost = prices.cost(usage, model, provider_type=deployment.provider_type, provider=deployment.provider_name,
                           deployment=deployment.name, hourly_rate=hourly)
    else:
        known_rates = ctx.rates  # resolved by the budget guard for the same model: reuse it
        rates = known_rates[1] if known_rates is not None and known_rates[0] == model else (
            prices.for_deployment(deployment, model))
        if (rates is not None and usage is not None and not rates.tiers
                and not (usage.cached_input_tokens or usage.cache_write_tokens or usage.reasoning_tokens)):
            # PriceBook.cost_with for plain input and output at one price (the common answer), inlined.
            base = rates.base
            cost = priced_cost(usage.input_tokens * base.input, usage.output_tokens * base.output, rates.currency,
                           rates.source)
        else:
            cost = prices.cost_with(rates, usage, model, deployment.provider_name)
    ctx.cost = cost
    return cost


class CostMiddleware(Middleware):
    """Prices usage with a :class:`PriceBook` and records it in a :class:`CostTracker`.

    Attempts that failed but still reported usage (an interrupted stream) are priced and recorded too: that money
    was spent. ``owns_stores`` lists stores :meth:`aclose` closes. The hook is a plain function: with the ledger
    in memory or in SQLite (written behind, in batches) recording waits for nothing; only the first record of a
    persistent ledger waits for the earlier spend to load, and a Redis ledger for its append.
    """

    name = "cost"

    def __init__(self, tracker: CostTracker | None = None, prices: PriceBook | None = None) -> None:
        self.tracker = tracker if tracker is not None else CostTracker()
        self.prices = prices if prices is not None else PriceBook()
        self.owns_stores: list[Any] = []
        self._loaded = self.tracker.ledger is None
        self._loading: asyncio.Future[int] | None = None
        self._tag_pairs: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}

    def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                      error: LLMError | None = None) -> Awaitable[None] | None:
        """Price the attempt, attach the cost to the answer and record it."""
        if usage is None and response is None:
            return None
        if not self._loaded:
            return self._load_then_record(ctx, response, usage, error)
        deployment = ctx.deployment
        model = getattr(response, "model", None) or ctx.model or deployment.model
        cost = ctx.cost
        if cost is None:
            cost = _price(self.prices, ctx, model, usage)
        if response is not None:
            if _carries_cost(response):
                response.cost = cost
            elif isinstance(getattr(response, "metadata", None), dict):
                response.metadata["cost"] = cost
        tags = ctx.tags
        tracker = self.tracker
        model = model or ""
        if tags:
            pairs = tuple(tags.items())
            # One shared tuple per distinct set of tags: a row holding only old objects is untracked by the
            # garbage collector's first pass, a row holding a fresh tuple survives into older generations.
            known = self._tag_pairs.get(pairs)
            if known is None:
                if len(self._tag_pairs) >= 10_000:
                    self._tag_pairs.clear()
                known = self._tag_pairs[pairs] = pairs
            pairs = known
        else:
            pairs = ()
        if usage is not None:
            row = (tracker.clock(), deployment.provider_name, model, deployment.name, deployment.key_alias,
                   deployment.provider_type, ctx.operation, ctx.request_id, pairs,
                   usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens,
                   usage.reasoning_tokens, cost.total_cost, cost.currency, cost.unpriced, cost.source, error is None)
        else:
            row = (tracker.clock(), deployment.provider_name, model, deployment.name, deployment.key_alias,
                   deployment.provider_type, ctx.operation, ctx.request_id, pairs,
                   0, 0, 0, 0, 0, cost.total_cost, cost.currency, cost.unpriced, cost.source, error is None)
        if tracker.ledger is None:
            tracker.add(row)
            return None
        return tracker.record_nowait(row)

    async def load_state(self) -> None:
        """Rebuild the tracker's totals from the persistent ledger (once; the manager calls it at start)."""
        if self._loaded:
            return
        loading = self._loading
        if loading is None:
            loading = self._loading = asyncio.ensure_future(self.tracker.load())
        try:
            await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loaded = True

    async def _load_then_record(self, ctx: AttemptContext, response: Any, usage: TokenUsage | None,
                                error: LLMError | None) -> None:
        # Earlier spend from the persistent ledger, loaded once; attempts ending meanwhile wait for it, so the
        # reload cannot drop what they record. A ledger that cannot be read now does not lose this attempt's cost.
        try:
            await self.load_state()
        except StoreUnavailableError as exc:
            logger.error("cost ledger unreadable (%s); this attempt's cost is recorded without it", exc)
        pending = self.after_attempt(ctx, response=response, usage=usage, error=error)
        if pending is not None:
            await pending

    def status(self) -> dict[str, Any]:
        """Totals, per-provider costs and price sources."""
        return {**self.tracker.summary(), "prices": self.prices.status()}

    async def aclose(self) -> None:
        """Close the stores this middleware owns (see :func:`~spoon_llm.middleware.defaults.build_middleware`).

        Closing a SQLite ledger writes the records it still buffers.
        """
        for store in self.owns_stores:
            await store.close()
        self.owns_stores.clear()


_COST_FIELD: dict[type, bool] = {}


def _carries_cost(response: Any) -> bool:
    """Whether the answer has a ``cost`` field (a stream chunk has none); asked once per pydantic model type.

    ``hasattr`` on a pydantic model without the field raises and catches an ``AttributeError`` inside pydantic's
    ``__getattr__``: once per streamed request, that showed in profiles.
    """
    kind = type(response)
    known = _COST_FIELD.get(kind)
    if known is None:
        fields = getattr(kind, "model_fields", None)
        if not isinstance(fields, dict):  # not a pydantic model: ask the object itself
            return hasattr(response, "cost")
        known = _COST_FIELD[kind] = "cost" in fields
    return known
