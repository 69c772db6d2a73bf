"""Budget guard middleware: refuses a request before it reaches the provider when it could break a budget.

Before the attempt the worst-case cost (estimated input + the most output the attempt may produce, at the model's
dearest rates) is reserved against every budget that applies; after it, the reservation is settled to the real
cost (priced by the cost middleware, or here when there is none) or released when the call failed without usage.
Requests that cost nothing per token (local models, zero-priced models, hourly-rate GPUs) are never refused:
refusing them saves no money.

The most output is the call's ``max_tokens`` (or ``max_completion_tokens`` / ``max_output_tokens``), else the
section's ``max_tokens`` (both are sent, so the provider stops there), else what the model can still write after
the prompt — its context window (the section's ``context_window``, else the price catalogue's record) less the
estimated input — capped by ``[budget] default_max_tokens``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal

from .._background import undo_if_abandoned
from ..errors import BudgetExceededError, StateStoreError
from ..state.base import StoreUnavailableError
from ..tokens._request import _OUTPUT_KWARGS, DEFAULT_MAX_TOKENS, request_tokens
from .base import AttemptContext, Middleware
from .cost import price_attempt

if TYPE_CHECKING:
    from ..costs.budgets import BudgetManager
    from ..errors import LLMError
    from ..events import EventBus
    from ..pricing.book import PriceBook
    from ..types import TokenUsage

__all__ = ["BudgetMiddleware"]

logger = logging.getLogger("spoon_llm.budget")


class BudgetMiddleware(Middleware):
    """Reserve-then-settle spend against a :class:`~spoon_llm.costs.BudgetManager`.

    ``default_max_tokens`` is the output assumed for calls that set no ``max_tokens``; ``fail_mode`` says what
    happens when the budget store is unreachable (``closed``: refuse, ``open``: allow and log). ``events``, when
    given, receives ``budget_alert`` events (also settable later through ``budgets.events``).
    """

    name = "budget"

    def __init__(self, budgets: BudgetManager, prices: PriceBook, *, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 fail_mode: Literal["closed", "open"] = "closed", events: EventBus | None = None) -> None:
        self.budgets = budgets
        self.prices = prices
        self.default_max_tokens = default_max_tokens
        self.fail_mode = fail_mode
        if events is not None:
            budgets.events = events
        self.refused = 0
        self.store_failures = 0
        # A persistent or shared store holds spend from before this process: read it back before the first
        # reservation, so status and refusals agree with the store (a memory store starts empty).
        self._loaded = not budgets.store.shared and budgets.store.name == "memory"
        self._loading: asyncio.Future[None] | None = None
        self._windows: dict[tuple[str, str | None, str | None], int | None] = {}
        self._catalogue: Any = None

    def _context_window(self, deployment: Any, model: str | None) -> int | None:
        """The model's context window: the section's ``context_window``, else the price catalogue's, else None."""
        configured = deployment.config.context_window
        if configured:
            return int(configured)
        if model is None:
            return None
        key = (deployment.provider_type, model, deployment.deployment.base_url)
        if key in self._windows:
            return self._windows[key]
        if self._catalogue is None:
            from ..pricing._genai import GenaiPrices

            self._catalogue = GenaiPrices()
        record = self._catalogue.match(model, deployment.provider_type, deployment.deployment.base_url)
        window = getattr(record, "context_window", None) if record is not None else None
        self._windows[key] = found = int(window) if window else None
        return found

    def _size(self, ctx: AttemptContext, model: str | None) -> tuple[int, int]:
        """``(estimated input, most output)`` of the attempt (see the module docstring), kept in ``ctx.tokens``."""
        tokens = request_tokens(ctx, self.default_max_tokens)
        kwargs = ctx.kwargs
        if ctx.operation == "embed" or ctx.deployment.config.max_tokens or (
                kwargs and any(kwargs.get(n) for n in _OUTPUT_KWARGS)):
            return tokens  # a max_tokens is sent: the provider stops there
        window = self._context_window(ctx.deployment, model)
        if window is not None and window - tokens[0] < tokens[1]:
            tokens = ctx.tokens = (tokens[0], max(1, window - tokens[0]))
        return tokens

    async def load_state(self) -> None:
        """Read the budgets' spend back from the store (once; the manager calls it at start)."""
        if self._loaded:
            return
        loading = self._loading
        if loading is None or (loading.done() and loading.exception() is not None):
            loading = self._loading = asyncio.ensure_future(self.budgets.load())
        await asyncio.shield(loading)
        self._loaded = True

    async def _load_then_reserve(self, ctx: AttemptContext) -> None:
        try:
            await self.load_state()
        except StoreUnavailableError as exc:
            self.store_failures += 1
            if self.fail_mode == "open":  # as for a failed reservation; the next request reads again
                logger.error("budget store unreachable (%s); fail_mode=open: request allowed WITHOUT budget "
                             "checks", exc)
                return
            raise StateStoreError(f"budget store unreachable and fail_mode is 'closed': {exc}", store=exc.store,
                                  operation=exc.operation or "budget read-back",
                                  provider=ctx.deployment.provider_name, model=ctx.model) from exc
        pending = self.before_attempt(ctx)
        if pending is not None:
            await pending

    def _explain(self, exc: BudgetExceededError, ctx: AttemptContext, rates: Any) -> BudgetExceededError:
        """``exc``, saying so when the reservation (not the spend) is what exceeds, and which max_tokens fits."""
        self.refused += 1
        if (not exc.requested or exc.limit is None or exc.spent is None or rates is None or ctx.tokens is None
                or exc.spent + (exc.reserved or 0.0) >= exc.limit):
            return exc
        room = exc.limit - exc.spent - (exc.reserved or 0.0)
        input_tokens, output_tokens = ctx.tokens
        fits = int((room - input_tokens * rates.worst_in) / rates.worst_out) if rates.worst_out else 0
        given = any(ctx.kwargs.get(n) for n in _OUTPUT_KWARGS) if ctx.kwargs else False
        why = "this call's max_tokens" if given else (
            "no max_tokens was given: the section's max_tokens, else what the model's context window leaves, "
            f"at most [budget] default_max_tokens = {self.default_max_tokens}")
        hint = (f"; the reservation, not the spend, is what exceeds the budget: it assumes {output_tokens} output "
                f"tokens ({why})")
        hint += (f"; pass max_tokens={fits} or less to fit in the {room:.6g} left" if fits > 0
                 else f"; only {room:.6g} is left, less than the input alone may cost")
        return BudgetExceededError(exc.message + hint, budget=exc.budget, limit=exc.limit, spent=exc.spent,
                                   provider=exc.provider, model=exc.model, reserved=exc.reserved,
                                   requested=exc.requested)

    def before_attempt(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Reserve the attempt's worst-case cost, or raise :class:`BudgetExceededError`.

        With the memory store everything happens here and nothing is returned; a shared store returns the
        reservation to await.
        """
        budgets = self.budgets
        if not budgets.active:
            return None
        if not self._loaded:
            return self._load_then_reserve(ctx)
        deployment = ctx.deployment
        if deployment.config.hourly_rate:
            return None  # paid by the hour whether called or not: refusing saves nothing
        model = ctx.model or deployment.model
        rates = self.prices.for_deployment(deployment, model)
        ctx.rates = (model, rates)
        if rates is None:
            worst = None  # unpriced: hold nothing, but still refused once a budget is used up
        elif rates.free:
            return None
        else:
            tokens = ctx.tokens or self._size(ctx, model)
            worst = (tokens[0] * rates.worst_in + tokens[1] * rates.worst_out if not rates.tiers
                     else rates.worst_case(tokens[0], tokens[1]))
        try:
            held = budgets.reserve_now(worst, deployment.provider_name, ctx.tags, model, ctx.request_id)
        except BudgetExceededError as exc:
            raise self._explain(exc, ctx, rates) from None
        if held is None:
            return self._reserve(ctx, worst, model)
        ctx.reservation = held
        return None

    async def _reserve(self, ctx: AttemptContext, worst: float | None, model: str | None) -> None:
        provider = ctx.deployment.provider_name
        budgets = self.budgets
        # A task the caller's cancellation does not interrupt halfway: a reservation it still makes is released.
        reserving = asyncio.ensure_future(budgets.reserve(worst, provider=provider, tags=ctx.tags, model=model,
                                                          request_id=ctx.request_id))
        try:
            ctx.reservation = await asyncio.shield(reserving)
        except asyncio.CancelledError:
            undo_if_abandoned(reserving, lambda held: None if held is None else budgets.release(held))
            raise
        except BudgetExceededError as exc:
            self.refused += 1
            raise self._explain(exc, ctx, ctx.rates[1] if ctx.rates else None) from None
        except StoreUnavailableError as exc:
            self.store_failures += 1
            if self.fail_mode == "open":
                logger.error("budget store unreachable (%s); fail_mode=open: request allowed WITHOUT budget "
                             "checks", exc)
                return
            # The store's own typed error: the budget was not found exceeded, it could not be read.
            raise StateStoreError(f"budget store unreachable and fail_mode is 'closed': {exc}", store=exc.store,
                                  operation=exc.operation or "budget reserve", provider=provider,
                                  model=model) from exc

    def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                      error: LLMError | None = None) -> Awaitable[None] | None:
        """Settle the reservation to the real cost, or release it (in place with the memory store)."""
        reservation = ctx.reservation
        ctx.reservation = None
        budgets = self.budgets
        if usage is None and response is None:
            if reservation is None or budgets.release_now(reservation):
                return None
            return self._guarded(budgets.release(reservation), ctx)
        cost = ctx.cost or price_attempt(self.prices, ctx, response, usage)
        if reservation is not None:
            if budgets.settle_now(reservation, cost.total_cost):
                return None
            return self._guarded(budgets.settle(reservation, cost.total_cost), ctx)
        if cost.total_cost > 0 and budgets.active:
            # Free per token but charged by the hour: count it, never refuse it.
            return self._guarded(budgets.record(cost.total_cost, provider=ctx.deployment.provider_name,
                                                tags=ctx.tags), ctx)
        return None

    async def _guarded(self, work: Awaitable[None], ctx: AttemptContext) -> None:
        try:
            await work
        except StoreUnavailableError as exc:
            self.store_failures += 1
            logger.error("budget store unreachable while settling %s: %s", ctx.request_id, exc)

    def status(self) -> dict[str, Any]:
        """Budgets (limit, spent, reserved, remaining, percent), recent alerts, refusals."""
        return {**self.budgets.status(), "refused": self.refused, "store_failures": self.store_failures,
                "fail_mode": self.fail_mode}
