"""Middleware: one cross-cutting concern around each provider attempt (budgets, rate limits, cost, caching)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .base import AttemptContext, Middleware

if TYPE_CHECKING:
    from .budget import BudgetMiddleware
    from .cost import CostMiddleware
    from .defaults import build_middleware, close_middleware
    from .rate_limit import RateLimitMiddleware

__all__ = [
    "AttemptContext",
    "BudgetMiddleware",
    "CostMiddleware",
    "Middleware",
    "RateLimitMiddleware",
    "build_middleware",
    "close_middleware",
]

# Loaded on first use so that `import spoon_llm` (which imports this package for the contract) stays cheap.
_LAZY = {
    "BudgetMiddleware": ".budget",
    "CostMiddleware": ".cost",
    "RateLimitMiddleware": ".rate_limit",
    "build_middleware": ".defaults",
    "close_middleware": ".defaults",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
