"""``HealthMonitor``: background health checks that mark deployments up and down."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import LLMManager

__all__ = ["HealthMonitor"]

logger = logging.getLogger("spoon_llm.health")


class HealthMonitor:
    """Every ``interval`` seconds, checks all deployments concurrently (health checks cost no tokens).

    A deployment that fails its check leaves rotation until a later check passes. Start it from async code
    with ``manager.start_health_monitoring(interval)``.
    """

    def __init__(self, manager: LLMManager | None = None, interval: float = 30.0) -> None:
        if interval <= 0:
            raise ValueError("the health-check interval must be positive")
        self._manager = manager
        self.interval = interval
        self.checks = 0
        self.last_results: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    @property
    def manager(self) -> LLMManager:
        """The manager checked: the one given, else the process-wide one (``get_llm_manager()``)."""
        if self._manager is None:
            from .manager import get_llm_manager

            self._manager = get_llm_manager()
        return self._manager

    @property
    def running(self) -> bool:
        """True while the background task (or thread) runs."""
        if self._thread is not None:
            return self._thread.is_alive()
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

    # -- the older API: start_monitoring(interval) / stop_monitoring(), from async or plain code --------------

    def start_monitoring(self, interval: float | None = None) -> HealthMonitor:
        """Start checking every ``interval`` seconds (default: the monitor's own).

        Inside a running event loop the checks run as a task of that loop; from plain code, in a daemon thread
        with its own loop. Returns the monitor; ``await`` on the result is not needed (and not possible).
        """
        if interval is not None:
            if interval <= 0:
                raise ValueError("the health-check interval must be positive")
            self.interval = interval
        if self.running:
            return self
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run_thread, args=(self._stop,), daemon=True,
                                            name="spoon-llm-health-monitor")
            self._thread.start()
        else:
            self.start()
        return self

    def stop_monitoring(self) -> _Stopped:
        """Stop the checks.

        From plain code it returns once they stopped; in async code ``await`` the result to wait for the task to
        end (the older API's ``await monitor.stop_monitoring()`` works too).
        """
        thread, stop = self._thread, self._stop
        if thread is not None and stop is not None:
            stop.set()
            thread.join()
            self._thread = self._stop = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()  # now, whether or not the caller awaits the result
        return _Stopped(task)

    def _run_thread(self, stop: threading.Event) -> None:
        async def loop() -> None:
            while not stop.is_set():
                try:
                    await self.check_now()
                except Exception:  # a broken round must not stop monitoring
                    logger.exception("health check round failed")
                await asyncio.get_running_loop().run_in_executor(None, stop.wait, self.interval)
            for state in self.manager.router.deployments.values():
                await state.close()  # the clients opened on this thread's loop close with it

        asyncio.run(loop())

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


class _Stopped:
    """What :meth:`HealthMonitor.stop_monitoring` returns: awaiting it waits for the cancelled task to end."""

    def __init__(self, task: asyncio.Task[None] | None) -> None:
        self._task = task

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                pass
