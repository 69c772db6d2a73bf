"""Middleware: one cross-cutting concern around each provider attempt (budgets, rate limits, cost, caching)."""

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
