"""Load-balancing strategies: the order in which equivalent deployments are tried."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from .deployment import DeploymentState

__all__ = ["Balancer", "Strategy"]

Strategy = Literal["round_robin", "weighted", "random", "least_inflight", "latency"]
STRATEGIES: tuple[Strategy, ...] = ("round_robin", "weighted", "random", "least_inflight", "latency")


class Balancer:
    """Orders a route's available deployments; the first is tried first, the rest are its failover order.

    * ``round_robin``: rotate, so N requests over K deployments split N/K each.
    * ``weighted``: smooth weighted round robin by ``weight`` (deterministic proportions).
    * ``random``: weighted random choice.
    * ``least_inflight``: fewest requests in flight first.
    * ``latency``: lowest moving-average latency first, with a small share of exploration so a slow deployment's
      average keeps being refreshed; deployments with no measurement yet go first so they get one.
    """

    def __init__(self, strategy: Strategy = "round_robin", *, exploration: float = 0.05,
                 rng: random.Random | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown load-balancing strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.strategy: Strategy = strategy
        self.exploration = exploration
        self._rng = rng or random.Random()
        self._counters: dict[str, int] = {}
        self._current_weights: dict[str, float] = {}

    def order(self, route: str, deployments: Sequence[DeploymentState]) -> list[DeploymentState]:
        """The try-order of ``deployments`` for one request on ``route``."""
        count = len(deployments)
        if count <= 1:
            return list(deployments)
        strategy = self.strategy
        if strategy == "round_robin":
            start = self._counters.get(route, 0)
            self._counters[route] = start + 1
            start %= count
            return [*deployments[start:], *deployments[:start]]
        if strategy == "weighted":
            return self._smooth_weighted(route, deployments)
        if strategy == "random":
            weights = [max(d.weight, 0.0) for d in deployments]
            if not any(weights):  # only standbys (weight 0) left: they share alike
                weights = [1.0] * count
            first = self._rng.choices(range(count), weights=weights)[0]
            return [deployments[first], *deployments[:first], *deployments[first + 1:]]
        if strategy == "least_inflight":
            start = self._counters.get(route, 0)
            self._counters[route] = start + 1
            rotated = [*deployments[start % count:], *deployments[: start % count]]
            return sorted(rotated, key=lambda d: d.inflight)
        ranked = sorted(deployments, key=lambda d: -1.0 if d.latency_ewma is None else d.latency_ewma)
        if self._rng.random() < self.exploration:
            pick = self._rng.randrange(count)
            ranked.insert(0, ranked.pop(pick))
        return ranked

    def _smooth_weighted(self, route: str, deployments: Sequence[DeploymentState]) -> list[DeploymentState]:
        # nginx's smooth weighted round robin: every deployment gains its weight, the richest is picked and pays
        # the total back; over sum(weights) requests each is picked exactly `weight` times, evenly spread.
        current = self._current_weights
        total = 0.0
        best: DeploymentState | None = None
        for d in deployments:
            key = f"{route}\x00{d.name}"
            current[key] = current.get(key, 0.0) + d.weight
            total += d.weight
            if best is None or current[key] > current[f"{route}\x00{best.name}"]:
                best = d
        assert best is not None
        current[f"{route}\x00{best.name}"] -= total
        return [best, *(d for d in deployments if d is not best)]
