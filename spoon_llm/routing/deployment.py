"""Run-time state of one deployment: its provider instances, circuit, in-flight count and latency."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from ..providers._guarded import guard_provider
from .circuit import CircuitBreaker

if TYPE_CHECKING:
    from ..config.models import Deployment, ProviderConfig
    from ..interface import LLMProviderInterface, ProviderCapability
    from ..registry import LLMProviderRegistry

__all__ = ["DeploymentState"]

#: Weight of the newest sample in the latency average (EWMA).
LATENCY_ALPHA = 0.3


class DeploymentState:
    """One deployment as the router sees it.

    Provider instances are kept per event loop: SDK clients hold connection pools bound to the loop that opened
    them, so a manager reused across ``asyncio.run()`` calls builds fresh clients for each new loop instead of
    touching sockets of a closed one.
    """

    def __init__(self, deployment: Deployment, config: ProviderConfig, circuit: CircuitBreaker) -> None:
        self.deployment = deployment
        self.config = config
        self.circuit = circuit
        self.name = deployment.name
        self.provider_name = deployment.provider
        self.provider_type = deployment.provider_type
        self.model = deployment.model
        self.key_alias = deployment.key_alias
        self.weight = deployment.weight
        self.inflight = 0
        #: Declared capabilities of the provider (``None``: none declared; routing then never skips it).
        self.capabilities: frozenset[ProviderCapability] | None = None
        self.latency_ewma: float | None = None
        self.healthy = True
        self.last_health_check: float | None = None
        #: Set when the deployment was taken out of rotation for good; cleared by reset.
        self.disabled_reason: str | None = None
        #: Why the circuit was last tripped by :meth:`quarantine` (its key was rejected); shown while it is open.
        self.quarantine_reason: str | None = None
        self._quarantined_in = 0  # the circuit's generation when it was quarantined
        self.requests = 0
        self.failures = 0
        #: This provider's own retry settings (``max_retries`` / ``retry_delay`` in its section), else ``None``:
        #: the manager's ``[retry]`` settings apply.
        self.max_retries: int | None = config.max_retries if "max_retries" in config.model_fields_set else None
        self.retry_delay: float | None = config.retry_delay
        self._instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary()
        )
        # The loop and instance of the last lookup: one identity check on the request path instead of a task.
        self._last_loop: asyncio.AbstractEventLoop | None = None
        self._last_instance: LLMProviderInterface | None = None
        # Bumped by repoint(): a retired instance's closer must not forget the instances built after it.
        self._epoch = 0

    @property
    def available(self) -> bool:
        """In rotation, healthy and with a circuit that admits traffic."""
        return self.disabled_reason is None and self.healthy and self.circuit.is_available()

    def ready_provider(self) -> LLMProviderInterface | None:
        """The provider already built for the running loop, or ``None`` (then await :meth:`provider`)."""
        if self._last_loop is asyncio.get_running_loop():
            return self._last_instance
        return None

    async def provider(self, registry: LLMProviderRegistry) -> LLMProviderInterface:
        """The initialised provider for the running loop, built on first use (concurrent callers share it)."""
        loop = asyncio.get_running_loop()
        task = self._instances.get(loop)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            result: LLMProviderInterface = task.result()  # already built for this loop
            self._last_loop, self._last_instance = loop, result
            return result
        if task is None or task.done():
            task = loop.create_task(self._build(registry))
            self._instances[loop] = task
        try:
            return await asyncio.shield(task)
        except BaseException:
            if task.done() and (task.cancelled() or task.exception() is not None):
                self._instances.pop(loop, None)
            raise

    async def _build(self, registry: LLMProviderRegistry) -> LLMProviderInterface:
        instance = registry.get_provider_class(self.provider_type)()
        if not getattr(instance, "provider_name", ""):
            instance.provider_name = self.provider_type
        # A third-party provider's foreign exceptions and answers become ours (see providers/_guarded.py).
        instance = guard_provider(instance)
        await instance.initialize(self.config)
        # asyncio.run() closes every live async generator before it closes the loop: this one's `finally` then
        # closes the client on its own loop, so connections never outlive the loop that opened them.
        guard = self._close_with_loop(instance)
        await guard.__anext__()
        self._guards[asyncio.get_running_loop()] = guard
        return instance

    async def _close_with_loop(self, instance: LLMProviderInterface) -> AsyncGenerator[None, None]:
        epoch = self._epoch
        try:
            yield
        finally:
            if epoch == self._epoch:  # else repoint() already dropped this instance from the caches
                loop = asyncio.get_running_loop()
                self._instances.pop(loop, None)
                self._guards.pop(loop, None)
                if self._last_loop is loop:
                    self._last_loop = self._last_instance = None
            await instance.cleanup()

    def repoint(self, config: ProviderConfig) -> list[AsyncGenerator[None, None]]:
        """Build providers from ``config`` from now on (e.g. a new endpoint), without touching calls in flight.

        Calls already running keep the instance they hold; returns the closers of those retired instances
        (``await closer.aclose()`` once nothing uses them any more; the loop's shutdown closes them otherwise).
        """
        self.config = config
        self._epoch += 1
        retired = list(self._guards.values())
        self._instances = weakref.WeakKeyDictionary()
        self._guards = weakref.WeakKeyDictionary()
        self._last_loop = self._last_instance = None
        return retired

    def quarantine(self, reason: str, seconds: float | None = None) -> None:
        """Out of rotation for ``seconds`` (default: the section's ``auth_cooldown``), then one probe request.

        A rejected key (401/403) is the reason: sending more requests with it cannot succeed, but a key fixed or
        re-enabled at the vendor must come back without a restart. The probe's success closes the circuit; its
        failure quarantines the key again.
        """
        self.quarantine_reason = reason
        self.circuit.trip(self.config.auth_cooldown if seconds is None else seconds)
        self._quarantined_in = self.circuit.generation

    def _quarantine_holds(self) -> bool:
        # The quarantine's own opening, or the half-open state that follows it; a later opening has other causes.
        circuit = self.circuit
        closed = circuit.state.value == "closed"  # read first: it may move an open circuit to half-open
        return self.quarantine_reason is not None and not closed and circuit.generation - self._quarantined_in <= 1

    def unavailable_because(self, now: float | None = None) -> tuple[str, float | None]:
        """Why the deployment takes no traffic now, and when it comes back (``time.time()`` seconds, or ``None``).

        ``now`` is the caller's ``time.time()``, so that waits reported together are measured from one instant.
        """
        if self.disabled_reason is not None:
            return f"taken out of rotation ({self.disabled_reason}) until reset_provider()", None
        if not self.healthy:
            return "failed its last health check; back when a health check passes", None
        why = (self.quarantine_reason if self._quarantine_holds() and self.quarantine_reason
               else "its circuit is open after repeated failures")
        wait = self.circuit.seconds_to_probe()
        if wait is None:
            return f"{why}; a probe request is in flight", None
        return why, (time.time() if now is None else now) + wait

    def record_latency(self, seconds: float) -> None:
        """Fold one successful call's latency into the moving average."""
        current = self.latency_ewma
        self.latency_ewma = seconds if current is None else current + LATENCY_ALPHA * (seconds - current)

    async def close(self) -> None:
        """Close the provider built for the running loop."""
        guard = self._guards.pop(asyncio.get_running_loop(), None)
        if guard is not None:
            await guard.aclose()  # runs the guard's `finally`: cleanup on this loop

    def reset(self) -> None:
        """Back into rotation with a closed circuit and fresh statistics."""
        self.disabled_reason = None
        self.quarantine_reason = None
        self.healthy = True
        self.circuit.reset()
        self.latency_ewma = None
        self.requests = 0
        self.failures = 0

    def status(self) -> dict[str, Any]:
        """A snapshot for ``get_provider_status`` (no secrets: the key is named by its alias only)."""
        return {
            "deployment": self.name,
            "provider": self.provider_name,
            "type": self.provider_type,
            "model": self.model,
            "key_alias": self.key_alias,
            "available": self.available,
            "healthy": self.healthy,
            # A quarantined key reads as disabled until its circuit closes ("circuit"."retry_at": when it probes).
            "disabled_reason": self.disabled_reason or (self.quarantine_reason if self._quarantine_holds() else None),
            "inflight": self.inflight,
            "latency_ewma": self.latency_ewma,
            "requests": self.requests,
            "failures": self.failures,
            "circuit": self.circuit.snapshot(),
        }

    def __repr__(self) -> str:
        return f"DeploymentState({self.name!r}, model={self.model!r}, available={self.available})"
