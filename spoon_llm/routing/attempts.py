"""The attempt loop of one request: which deployment next, whether to retry, how long to wait, when to stop.

Shared by every operation, streamed or not::

    run = RequestRun(router, policy, plan, fallback, deadline)
    async for slot in run:                 # waits out backoffs; stops when candidates or time run out
        try:
            result = await call(slot)
        except LLMError as exc:
            run.failed(slot, exc)          # raises when the policy says stop
            continue
        run.succeeded(slot)
        return result
    raise run.exhausted()
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import (
    AllProvidersFailedError,
    AuthenticationError,
    LLMError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    TimeoutError,
)
from ..types import Attempt
from .policy import Action, ErrorPolicy, backoff_delay

if TYPE_CHECKING:
    from .deployment import DeploymentState
    from .router import RoutePlan, Router

__all__ = ["RequestRun", "Slot"]


class Slot:
    """One attempt: a deployment, the model to ask it for, and the time budget left."""

    __slots__ = ("deployment", "model", "retry", "started", "timeout", "waited")

    def __init__(self, deployment: DeploymentState, model: str | None, retry: int, waited: float,
                 timeout: float | None) -> None:
        self.deployment = deployment
        self.model = model
        self.retry = retry
        self.waited = waited
        self.timeout = timeout
        self.started = time.perf_counter()


def _counts_against_health(error: LLMError) -> bool:
    # 4xx caused by the request say nothing about the deployment; rate limits, 5xx, network trouble and a rejected
    # key do.
    return isinstance(error, AuthenticationError) or (isinstance(error, ProviderError) and error.retryable)


class RequestRun:
    """State of one request across retries and fallbacks, with one deadline over all of it."""

    def __init__(
        self,
        router: Router,
        policy: ErrorPolicy,
        plan: RoutePlan,
        fallback: bool | Sequence[str] | None,
        deadline: float | None,
        rng: random.Random | None = None,
    ) -> None:
        self.router = router
        self.policy = policy
        self.started = time.monotonic()
        self.deadline_at = self.started + deadline if deadline is not None and deadline > 0 else math.inf
        self.attempts: list[Attempt] = []
        self.errors: list[LLMError] = []
        self.path: list[str] = []
        self._rng = rng
        self._fallback = fallback
        self._plans: list[RoutePlan] = [plan]
        self._plan_index = 0
        self._fallbacks_added = False
        self._candidates = router.ordered(plan)
        self._current: tuple[DeploymentState, str | None] | None = None
        self._retry = 0
        self._pending_delay = 0.0
        self._tried_context_fallback = False

    # -- iteration ------------------------------------------------------------------------------------------

    def __aiter__(self) -> RequestRun:
        return self

    async def __anext__(self) -> Slot:
        waited = 0.0
        if self._pending_delay > 0 and self._current is not None:
            waited = self._pending_delay
            self._pending_delay = 0.0
            await asyncio.sleep(waited)
        else:
            self._pending_delay = 0.0
            if not self._advance():
                raise StopAsyncIteration
        assert self._current is not None
        remaining = self.remaining()
        if remaining <= 0:
            self._record_deadline()
            raise StopAsyncIteration
        deployment, model = self._current
        self.path.append(deployment.name)
        return Slot(deployment, model, self._retry, waited, None if math.isinf(remaining) else remaining)

    def _advance(self) -> bool:
        """Move to the next available candidate (across plans); False when none is left."""
        self._retry = 0
        while True:
            for deployment, model in self._candidates:
                if deployment.available and deployment.circuit.allow_request():
                    self._current = (deployment, model)
                    return True
            if not self._next_plan():
                self._current = None
                return False

    def _next_plan(self) -> bool:
        if not self._fallbacks_added:
            self._fallbacks_added = True
            self._plans.extend(self.router.fallback_plans(self._plans[0], self._fallback))
        self._plan_index += 1
        if self._plan_index >= len(self._plans):
            return False
        self._candidates = self.router.ordered(self._plans[self._plan_index])
        return True

    @property
    def route(self) -> str:
        """The name of the route the request started on."""
        return self._plans[0].name

    @property
    def will_retry(self) -> bool:
        """True when the last failure will be retried on the same deployment."""
        return self._pending_delay > 0

    def remaining(self) -> float:
        """Seconds left before the request's deadline (infinite when there is none)."""
        return self.deadline_at - time.monotonic()

    # -- outcomes -------------------------------------------------------------------------------------------

    def _attempt(self, slot: Slot, error: LLMError | None) -> Attempt:
        deployment = slot.deployment
        attempt = Attempt(
            provider=deployment.provider_name,
            model=slot.model or deployment.model,
            deployment=deployment.name,
            key_alias=deployment.key_alias,
            error_type=type(error).__name__ if error is not None else None,
            status_code=getattr(error, "status_code", None),
            waited=slot.waited,
            latency=time.perf_counter() - slot.started,
        )
        self.attempts.append(attempt)
        deployment.requests += 1
        return attempt

    def succeeded(self, slot: Slot) -> Attempt:
        """Record a success: circuit closed, latency folded into the average."""
        attempt = self._attempt(slot, None)
        slot.deployment.circuit.record_success()
        slot.deployment.record_latency(attempt.latency)
        return attempt

    def record_failure(self, slot: Slot, error: LLMError, *, count_health: bool = True) -> None:
        """Record a failed attempt (trace, circuit, counters) without deciding what comes next."""
        self._attempt(slot, error)
        self.errors.append(error)
        deployment = slot.deployment
        if not count_health:
            deployment.circuit.release_probe()
        elif _counts_against_health(error):
            deployment.failures += 1
            deployment.circuit.record_failure()
        else:
            # The deployment answered: it is up, whatever it thought of the request.
            deployment.circuit.record_success()

    def failed(self, slot: Slot, error: LLMError, *, count_health: bool = True) -> None:
        """Record a failure and decide what comes next; raises ``error`` when the policy says to stop.

        ``count_health=False`` for refusals that happened before the request left the process (our own rate
        limiter): they must not open the deployment's circuit.
        """
        self.record_failure(slot, error, count_health=count_health)
        deployment = slot.deployment
        action = self.policy.action_for(error)
        if action is Action.FAIL:
            raise self.final_error(error)
        if isinstance(error, AuthenticationError):
            deployment.disabled_reason = f"{type(error).__name__}: the provider rejected the key ({error.status_code})"
        if action is Action.RETRY and self._retry < self.policy.max_retries:
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                return  # not worth waiting for: next candidate
            delay = backoff_delay(self.policy, self._retry + 1, retry_after, self._rng)
            if time.monotonic() + delay >= self.deadline_at:
                return  # the wait would outlive the deadline: next candidate at once
            if not deployment.available:
                return  # its circuit just opened
            self._retry += 1
            self._pending_delay = max(delay, 1e-9)
            return
        if action is Action.CONTEXT_FALLBACK and not self._tried_context_fallback:
            self._tried_context_fallback = True
            target = self._plans[self._plan_index].context_fallback
            if target:
                plan = self.router.resolve(None, target)
                self._plans.insert(self._plan_index + 1, plan)
                self._candidates = iter(())  # leave the current plan: it cannot fit the prompt
        if isinstance(error, ModelNotFoundError):
            return

    def _record_deadline(self) -> None:
        self.errors.append(TimeoutError(
            f"request deadline exceeded after {time.monotonic() - self.started:.2f}s",
            retryable=False,
        ))

    def final_error(self, error: LLMError) -> LLMError:
        """``error`` with the attempt trace attached."""
        error.attempts = list(self.attempts)  # type: ignore[attr-defined]
        error.fallback_path = list(self.path)  # type: ignore[attr-defined]
        return error

    def exhausted(self) -> LLMError:
        """The error to raise when no candidate is left: the only error, or all of them."""
        if not self.errors:
            names = ", ".join(d.name for plan in self._plans for d, _ in plan.targets) or "none"
            error: LLMError = ProviderUnavailableError(
                f"no deployment is available for this request (circuits open, unhealthy or taken out of "
                f"rotation): {names}",
                retryable=True,
            )
        elif len(self.errors) == 1:
            error = self.errors[0]
        else:
            providers = {a.provider for a in self.attempts}
            error = AllProvidersFailedError(self.errors,
                                            provider=providers.pop() if len(providers) == 1 else None)
        return self.final_error(error)

    def annotate(self, result: Any, attempt: Attempt) -> None:
        """Write the attempt trace onto a successful response."""
        result.attempts = self.attempts
        result.fallback_path = self.path
        result.deployment = attempt.deployment
