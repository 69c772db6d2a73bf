"""Cost tracking and budgets: what was spent, by whom, and how much may still be spent.

* :class:`CostTracker` totals usage and cost by provider, model, deployment (key) and caller tags, keeps a
  time-bucketed history and exports JSON/CSV.
* :class:`BudgetManager` enforces :class:`Budget` limits (global, per provider, per tag; total, daily, monthly)
  with reserve-then-settle accounting and alerts.
"""

from __future__ import annotations

from .budgets import Budget, BudgetAlert, BudgetManager, Reservation
from .tracker import CostTracker, UsageRecord, UsageRow, UsageTotals

__all__ = ["Budget", "BudgetAlert", "BudgetManager", "CostTracker", "Reservation", "UsageRecord", "UsageRow",
           "UsageTotals"]
