"""Building the usage-economics middleware chain from the configuration.

``build_middleware(config_manager)`` returns, in order: the response cache (when ``[cache]`` or a provider section
enables it), shared circuit breaking (when circuits are shared through
the state store), the budget guard (only when a budget is configured), the rate limiter and cost accounting.
Which stores they use comes from ``[state]``: ``backend`` for limits and cool-downs, ``ledger`` for budget spend
and the usage ledger (see :class:`~spoon_llm.config.models.StateConfig`).

Example::

    chain = build_middleware(config_manager, events=manager.events)
    manager = LLMManager(config_manager, middleware=chain)
    ...
    await close_middleware(chain)   # closes the SQLite/Redis stores the chain opened
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..costs.budgets import Budget, BudgetManager
from ..costs.tracker import CostTracker
from ..pricing.book import PriceBook
from ..ratelimit.limiter import RateLimiter
from ..state import MemoryStore, open_store
from .budget import BudgetMiddleware
from .circuit import SharedCircuitMiddleware
from .cost import CostMiddleware
from .rate_limit import RateLimitMiddleware

if TYPE_CHECKING:
    from ..config.manager import ConfigurationManager
    from ..config.models import BudgetConfig, SpoonConfig
    from ..events import EventBus
    from ..state.base import StateStore
    from .base import Middleware

__all__ = ["budgets_from_config", "build_middleware", "close_middleware"]


def budgets_from_config(config: BudgetConfig) -> list[Budget]:
    """The budgets a ``[budget]`` section describes: ``limit`` (global), ``per_provider`` and ``per_tag``."""
    thresholds = tuple(sorted(config.alert_thresholds))
    out = []
    if config.limit is not None:
        out.append(Budget("global", config.limit, config.period, "global", thresholds=thresholds))
    for provider, limit in config.per_provider.items():
        out.append(Budget(f"provider:{provider}", limit, config.period, "provider", provider, thresholds=thresholds))
    for spec, limit in config.per_tag.items():
        tag, sep, value = spec.partition(":")
        name = f"tag:{tag}={value}" if sep else f"tag:{tag}"
        out.append(Budget(name, limit, config.period, "tag", tag, value if sep else None, thresholds))
    return out


def build_middleware(config_manager: ConfigurationManager | SpoonConfig | None = None, *,
                     events: EventBus | None = None, store: StateStore | None = None,
                     ledger: StateStore | None = None, prices: PriceBook | None = None,
                     env: Mapping[str, str] | None = None) -> list[Middleware]:
    """The configured chain: budget guard -> rate limiter -> cost accounting.

    ``store`` / ``ledger`` override the stores named in ``[state]`` (the caller then closes them); stores built
    here are closed by :func:`close_middleware`. ``events`` receives ``budget_alert`` events.
    """
    from ..config.manager import ConfigurationManager

    if config_manager is None:
        config_manager = ConfigurationManager()
    config = config_manager.config if isinstance(config_manager, ConfigurationManager) else config_manager
    state = config.state
    owned: list[StateStore] = []
    budgets = budgets_from_config(config.budget)
    if store is None:
        store = open_store(state.backend, config=state, env=env)
        owned.append(store)
    if ledger is None:
        kind = state.ledger
        if kind == "auto":
            kind = "redis" if state.backend == "redis" else "sqlite" if budgets else "memory"
        if kind == store.name:
            ledger = store
        elif kind == "memory":
            ledger = MemoryStore()
        else:
            ledger = open_store(kind, config=state, env=env)
            owned.append(ledger)
    prices = prices if prices is not None else PriceBook.from_config(config)
    chain: list[Middleware] = []
    from ..cache.build import build_cache

    cache = build_cache(config, env)
    if cache is not None:
        chain.append(cache)  # outermost: a hit reserves, limits and charges nothing
    share = state.share_circuits if state.share_circuits is not None else state.backend == "redis"
    if share:
        chain.append(SharedCircuitMiddleware(store))
    if budgets:
        manager = BudgetManager(ledger, budgets, events=events)
        chain.append(BudgetMiddleware(manager, prices, default_max_tokens=config.budget.default_max_tokens,
                                      fail_mode=state.fail_mode))
    limiter = RateLimiter(store, policy=config.rate_limits, fail_mode=state.fail_mode)
    chain.append(RateLimitMiddleware(limiter, default_max_tokens=config.budget.default_max_tokens))
    caps = {name: p.max_concurrent_requests for name, p in config.providers.items() if p.max_concurrent_requests}
    if caps:  # the older per-provider max_concurrent_requests: admitted attempts then wait for a slot
        from .concurrency import ConcurrencyLimitMiddleware

        chain.append(ConcurrencyLimitMiddleware(caps))
    cost = CostMiddleware(CostTracker(ledger if ledger.shared else None), prices)
    cost.owns_stores = owned
    chain.append(cost)
    return chain


async def close_middleware(chain: Iterable[Any]) -> None:
    """Close what each middleware of ``chain`` opened (those with an ``aclose`` method)."""
    for middleware in chain:
        closer = getattr(middleware, "aclose", None)
        if closer is not None:
            await closer()
