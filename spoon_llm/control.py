"""Run-time control of a manager: the default backend, the fallback chain, balancing, health checks and status.

:class:`RunTimeControl` is a base of :class:`~spoon_llm.manager.LLMManager`; these methods change or report the
routing state that requests read, never a request itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .errors import LLMError, ValidationError
from .routing.balancer import Balancer, Strategy

if TYPE_CHECKING:
    from .config.manager import ConfigurationManager
    from .health import HealthMonitor
    from .manager import LLMManager
    from .middleware.chain import MiddlewareChain
    from .monitoring.metrics import MetricsCollector
    from .registry import LLMProviderRegistry
    from .routing.router import Router

__all__ = ["RunTimeControl"]


class RunTimeControl:
    """Switching the default backend, resetting deployments, health checks and status pages."""

    # Set by LLMManager.__init__.
    config_manager: ConfigurationManager
    registry: LLMProviderRegistry
    router: Router
    metrics: MetricsCollector | None
    _chain: MiddlewareChain
    _stats: dict[str, int]
    _health_monitor: HealthMonitor | None

    # -- configuration at run time --------------------------------------------------------------------------

    def set_fallback_chain(self, chain: Sequence[str]) -> None:
        """Replace the global fallback chain (names of providers or aliases)."""
        for name in chain:
            if name not in self.config_manager.config.models:
                self.router.provider_deployments(name)  # raises with a did-you-mean for unknown names
        self.router.fallback_override = list(chain)

    def enable_load_balancing(self, strategy: Strategy = "round_robin") -> None:
        """Spread traffic over equivalent deployments with ``strategy``."""
        self.router.balancer = Balancer(strategy)

    def disable_load_balancing(self) -> None:
        """Try deployments in configuration order (still failing over between them)."""
        self.router.balancer = None

    async def switch_backend(self, name: str, skip_health_check: bool = False) -> dict[str, Any]:
        """Make ``name`` (a provider or alias) the default; unless skipped, it must pass a health check first."""
        try:
            plan = self.router.resolve(name, None)
        except LLMError as exc:
            return {"success": False, "backend": name, "message": str(exc)}
        if not skip_health_check:
            results = await asyncio.gather(*(self._check(d) for d, _ in plan.targets))
            if not any(results):
                return {"success": False, "backend": name,
                        "message": f"{name!r} failed its health check; the default is unchanged"}
        else:
            for deployment, _ in plan.targets:  # forced: back into rotation, whatever failed before
                deployment.reset()
        previous = self.router.default_route() if self.router.default_override or self._has_default() else None
        self.router.default_override = name
        return {"success": True, "backend": name, "message": f"default backend switched from {previous!r} to {name!r}"}

    def _has_default(self) -> bool:
        try:
            self.config_manager.get_default_provider()
        except LLMError:
            return False
        return True

    def reset_provider(self, name: str) -> None:
        """Put every deployment of provider ``name`` (or one deployment by its name) back into rotation."""
        states = [self.router.deployments[name]] if name in self.router.deployments else (
            self.router.provider_deployments(name))
        for state in states:
            state.reset()

    # -- health ---------------------------------------------------------------------------------------------

    async def _check(self, deployment: Any) -> bool:
        try:
            instance = await deployment.provider(self.registry)
            ok = bool(await instance.health_check())
        except Exception:
            ok = False
        deployment.healthy = ok
        deployment.last_health_check = time.time()
        return ok

    async def health_check_all(self) -> dict[str, bool]:
        """Check every deployment concurrently (no tokens spent); returns ``{deployment: healthy}``."""
        states = list(self.router.deployments.values())
        results = await asyncio.gather(*(self._check(s) for s in states))
        return {s.name: ok for s, ok in zip(states, results, strict=True)}

    def start_health_monitoring(self, interval: float = 30.0) -> HealthMonitor:
        """Check every deployment every ``interval`` seconds in the background (call from async code)."""
        from .health import HealthMonitor

        if not interval > 0:
            raise ValidationError(f"the health-check interval must be a positive number of seconds, not {interval!r}")
        if self._health_monitor is None:
            self._health_monitor = HealthMonitor(cast("LLMManager", self), interval)
        self._health_monitor.interval = interval  # a later call's interval applies too
        self._health_monitor.start()
        return self._health_monitor

    async def stop_health_monitoring(self) -> None:
        """Stop the background health checks."""
        if self._health_monitor is not None:
            await self._health_monitor.stop()

    # -- status ---------------------------------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        """Request counters: requests, successes, failures, cancelled, fallbacks, retries, inflight, peak_inflight."""
        return dict(self._stats)

    def get_provider_status(self) -> dict[str, dict[str, Any]]:
        """Per deployment: availability, health, circuit, in-flight, latency, counters (no secrets)."""
        return {name: state.status() for name, state in self.router.deployments.items()}

    def get_status(self) -> dict[str, Any]:
        """Everything a status page needs: default, fallback chain, balancing, stats, deployments, metrics.

        ``metrics``: requests, tokens, latency, errors by type and usage by model (see
        :func:`spoon_llm.monitoring._status.status_metrics`).
        """
        from .monitoring._status import status_metrics

        try:
            default: str | None = self.router.default_route()
        except LLMError:
            default = None
        return {
            "default": default,
            "fallback_chain": self.router.fallback_chain(),
            "load_balancing": self.router.balancer.strategy if self.router.balancer else None,
            "health_monitoring": bool(self._health_monitor and self._health_monitor.running),
            "stats": self.get_stats(),
            "deployments": self.get_provider_status(),
            "middleware": {m.name: m.status() for m in self._chain.middleware},
            "metrics": status_metrics(self.metrics, self._stats),
        }
