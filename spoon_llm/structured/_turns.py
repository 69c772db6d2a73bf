"""Summing several model calls that serve one logical request (re-asks, tool turns) into one answer."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..types import Attempt, CostInfo, LLMResponse, TokenUsage

__all__ = ["Turns", "sum_costs"]


def sum_costs(costs: list[CostInfo | None]) -> CostInfo | None:
    """The total of several calls' costs; unpriced if any call was unpriced (its share is not a real zero)."""
    known = [c for c in costs if c is not None]
    if not known:
        return None
    return CostInfo(
        input_cost=sum(c.input_cost for c in known),
        output_cost=sum(c.output_cost for c in known),
        total_cost=sum(c.total_cost for c in known),
        currency=known[-1].currency,
        source=known[-1].source,
        unpriced=any(c.unpriced for c in known) or len(known) < len(costs),
    )


class Turns:
    """The calls made so far for one request, in order; :meth:`combined` is the caller's answer."""

    def __init__(self) -> None:
        self.responses: list[LLMResponse] = []
        self.reasks = 0

    def add(self, response: LLMResponse) -> None:
        """Record one call's answer."""
        self.responses.append(response)

    def mark_failed(self, error_type: str) -> None:
        """Mark the last call's final attempt in the trace as failed with ``error_type`` (e.g. a re-ask)."""
        last = self.responses[-1]
        if last.attempts:
            last.attempts = [*last.attempts[:-1], dataclasses.replace(last.attempts[-1], error_type=error_type)]

    @property
    def usage(self) -> TokenUsage | None:
        """Tokens summed over every call."""
        total: TokenUsage | None = None
        for response in self.responses:
            if response.usage is not None:
                total = response.usage if total is None else total + response.usage
        return total

    @property
    def cost(self) -> CostInfo | None:
        """Cost summed over every call."""
        return sum_costs([r.cost for r in self.responses])

    def combined(self, **fields: Any) -> LLMResponse:
        """The last answer, carrying the summed usage and cost and the attempts of every call (plus ``fields``)."""
        last = self.responses[-1]
        if len(self.responses) == 1:
            # One call: its own answer (fresh from the manager) carries the extra fields; no copy needed.
            for name, value in fields.items():
                setattr(last, name, value)
            return last
        attempts: list[Attempt] = []
        path: list[str] = []
        for response in self.responses:
            attempts.extend(response.attempts)
            path.extend(response.fallback_path)
        update: dict[str, Any] = {
            "usage": self.usage, "cost": self.cost, "attempts": attempts, "fallback_path": path,
            "duration": sum(r.duration for r in self.responses),
            "metadata": {**last.metadata, "calls": len(self.responses), "output_reasks": self.reasks},
        }
        update.update(fields)
        return last.model_copy(update=update)
