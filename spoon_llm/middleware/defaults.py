"""Building the usage-economics middleware chain from the configuration.

``build_middleware(config_manager)`` returns, in order: the response cache (when ``[cache]`` or a provider section
enables it), shared circuit breaking (when circuits are shared through
the state store), the budget guard (only when a budget is configured), the rate limiter and cost accounting.
Which stores they use comes from ``[state]``: ``backend`` for limits and cool-downs, ``ledger`` for budget spend
and the usage ledger (see :class:`~spoon_llm.config.models.StateConfig`).

``LLMManager(middleware=[mine])`` adds ``mine`` to that chain (see :func:`compose_middleware`): after it, or
before it for a middleware whose ``placement`` is ``"outer"``. ``default_middleware=False`` runs only your own.

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
from ..costs.namespace import ledger_table, resolve_namespace
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

__all__ = ["budgets_from_config", "build_middleware", "close_middleware", "compose_middleware", "unenforced_settings"]


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
    namespace = resolve_namespace(config_manager)  # never one machine-wide bucket
    if budgets:
        manager = BudgetManager(ledger, budgets, events=events, namespace=namespace)
        chain.append(BudgetMiddleware(manager, prices, default_max_tokens=config.budget.default_max_tokens,
                                      fail_mode=state.fail_mode))
    limiter = RateLimiter(store, policy=config.rate_limits, fail_mode=state.fail_mode)
    chain.append(RateLimitMiddleware(limiter, default_max_tokens=config.budget.default_max_tokens))
    caps = {name: p.max_concurrent_requests for name, p in config.providers.items() if p.max_concurrent_requests}
    if caps:  # the older per-provider max_concurrent_requests: admitted attempts then wait for a slot
        from .concurrency import ConcurrencyLimitMiddleware

        chain.append(ConcurrencyLimitMiddleware(caps))
    cost = CostMiddleware(CostTracker(ledger if ledger.shared else None, table=ledger_table(namespace)), prices)
    cost.owns_stores = owned
    chain.append(cost)
    return chain


async def close_middleware(chain: Iterable[Any]) -> None:
    """Close what each middleware of ``chain`` opened (those with an ``aclose`` method)."""
    for middleware in chain:
        closer = getattr(middleware, "aclose", None)
        if closer is not None:
            await closer()


def _is_configured_kind(middleware: Any) -> bool:
    from ..cache.middleware import CacheMiddleware

    return isinstance(middleware, (BudgetMiddleware, RateLimitMiddleware, CostMiddleware, SharedCircuitMiddleware,
                                   CacheMiddleware))


def compose_middleware(config_manager: ConfigurationManager, user: Iterable[Middleware] | None, *,
                       default_middleware: bool = True, events: EventBus | None = None
                       ) -> tuple[list[Middleware], list[Middleware]]:
    """The manager's chain and the part of it built here (whose stores the manager closes).

    Order: ``user`` middleware with ``placement = "outer"``, then the configured chain of :func:`build_middleware`
    (cache, shared circuits, budget guard, rate limiter, cost accounting), then the rest of ``user`` in the order
    given. The configured chain is left out when ``default_middleware`` is false, and when ``user`` already holds
    one of its kinds (a chain the caller built with :func:`build_middleware`), so nothing runs twice.
    """
    mine = list(user or ())
    if not default_middleware or any(_is_configured_kind(m) for m in mine):
        return mine, []
    owned = build_middleware(config_manager, events=events)
    outer = [m for m in mine if getattr(m, "placement", "inner") == "outer"]
    inner = [m for m in mine if getattr(m, "placement", "inner") != "outer"]
    return [*outer, *owned, *inner], owned


def _limited(config: SpoonConfig) -> list[str]:
    """The provider sections that set a rate limit."""
    out = []
    for name, section in config.providers.items():
        if not section.enabled:
            continue
        if (section.rpm or section.tpm or section.rph or section.input_tpm or section.output_tpm or section.key_rpm
                or section.key_tpm or any(key.rpm or key.tpm for key in section.api_keys)):
            out.append(name)
    return out


def unenforced_settings(config: SpoonConfig, chain: Iterable[Middleware]) -> list[str]:
    """A sentence for each configured budget or limit that no middleware of ``chain`` enforces."""
    chain = list(chain)
    problems = []
    if budgets_from_config(config.budget) and not any(isinstance(m, BudgetMiddleware) for m in chain):
        problems.append("[budget] sets a spending limit but no BudgetMiddleware is in the middleware chain, so "
                        "nothing refuses requests over it (fix: drop default_middleware=False, or add "
                        "build_middleware(config) to middleware=)")
    limited = _limited(config)
    if limited and not any(isinstance(m, RateLimitMiddleware) for m in chain):
        problems.append(f"providers {', '.join(limited)} set rate limits (rpm/tpm/rph) but no RateLimitMiddleware "
                        "is in the middleware chain, so they are not enforced (fix: drop default_middleware=False, "
                        "or add build_middleware(config) to middleware=)")
    return problems
