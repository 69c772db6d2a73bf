"""Middleware: one cross-cutting concern around each provider attempt (budgets, rate limits, cost, caching)."""

from .base import AttemptContext, Middleware

__all__ = ["AttemptContext", "Middleware"]
