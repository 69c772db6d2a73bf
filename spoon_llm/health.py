"""``HealthMonitor``: background health checks that mark deployments up and down."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .manager import LLMManager

__all__ = ["HealthMonitor"]

logger = logging.getLogger("spoon_llm.health")


class HealthMonitor:
    """Every ``interval`` seconds, checks all deployments concurrently (health checks cost no tokens).

    A deployment that fails its check leaves rotation until a later check passes. Start it from async code
    with ``manager.start_health_monitoring(interval)``.
    """

    def __init__(self, manager: LLMManager, interval: float = 30.0) -> None:
        if interval <= 0:
            raise ValueError("the health-check interval must be positive")
        self.manager = manager
        self.interval = interval
        self.checks = 0
        self.last_results: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the background task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start checking in the background of the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="spoon-llm-health-monitor")

    async def stop(self) -> None:
        """Stop checking and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def check_now(self) -> dict[str, bool]:
        """Run one round of checks now."""
        results = await self.manager.health_check_all()
        changed = {name: ok for name, ok in results.items() if self.last_results.get(name) != ok}
        for name, ok in changed.items():
            logger.log(logging.INFO if ok else logging.WARNING, "deployment_health_changed",
                       extra={"deployment": name, "healthy": ok})
        self.last_results = results
        self.checks += 1
        return results

    async def _loop(self) -> None:
        while True:
            try:
                await self.check_now()
            except Exception:  # a broken round must not stop monitoring
                logger.exception("health check round failed")
            await asyncio.sleep(self.interval)
