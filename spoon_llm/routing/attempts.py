"""The attempt loop of one request: which deployment next, whether to retry, how long to wait, when to stop.

Shared by every operation, streamed or not::

    run = RequestRun(router, policy, plan, fallback, deadline)
    slot = run.first()                     # no await: the common request makes exactly one attempt
    while slot is not None:
        try:
            result = await call(slot)
        except LLMError as exc:
            run.failed(slot, exc)          # raises when the policy says stop
            slot = await run.next()        # waits out a backoff; None when candidates or time run out
            continue
        run.succeeded(slot)
        return result
    raise run.exhausted()

The manager's non-streamed path goes one step further: the first attempt runs on :func:`first_slot` without a
run, recorded by :func:`record_success`; only a failure builds the run, which takes over with ``resume=slot``.
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
    RequestTimeoutError,
)
from ..types import Attempt, EmbeddingResponse, LLMResponse
from .capabilities import Needs, missing
from .policy import Action, ErrorPolicy, backoff_delay
from .unavailable import unavailable_error

if TYPE_CHECKING:
    from .deployment import DeploymentState
    from .router import RoutePlan, Router
    from .timeouts import RouteTimeouts

__all__ = ["RequestRun", "Slot", "admits", "annotate", "first_slot", "new_attempt", "record_success"]

_TRACE_FIELDS = ("attempts", "fallback_path", "deployment")
#: Response types whose trace fields ``annotate`` may write directly.
_TRACED_MODELS = frozenset({LLMResponse, EmbeddingResponse})


class Slot:
    """One attempt: a deployment, the model to ask it for, and the time budget left.

    ``timeout`` is what the attempt may take: the time left before the request's deadline, cut to the ``timeout``
    cap of the route it was made for (``route``, whose stream caps ``stream_timeouts`` applies too).
    """

    __slots__ = ("deployment", "ends", "generation", "model", "retry", "route", "started", "timeout", "waited")

    def __init__(self, deployment: DeploymentState, model: str | None, retry: int, waited: float,
                 timeout: float | None, route: RouteTimeouts | None = None) -> None:
        self.deployment = deployment
        self.model = model
        self.retry = retry
        self.waited = waited
        if route is not None:
            timeout = route.attempt(timeout)
        self.timeout = timeout
        self.route = route
        #: When the attempt's time ends (``time.monotonic()``); infinite without a bound.
        self.ends = math.inf if timeout is None else time.monotonic() + timeout
        self.started = time.perf_counter()
        # The circuit's generation at admission: outcomes of calls admitted before a state change do not move it.
        self.generation = deployment.circuit.generation


def _counts_against_health(error: LLMError) -> bool:
    # 4xx caused by the request say nothing about the deployment; rate limits, 5xx, network trouble and a rejected
    # key do.
    return isinstance(error, AuthenticationError) or (isinstance(error, ProviderError) and error.retryable)


class RequestRun:
    """State of one request across retries and fallbacks, with one deadline over all of it."""

    # Lists made only when needed, and every field that starts at a default left to the class: the common
    # request makes one attempt, and this object is built on each request's path.
    _attempts: list[Attempt] | None = None
    _errors: list[LLMError] | None = None
    _plans: list[RoutePlan] | None = None  # the route's plan, then its fallbacks (made on first failure)
    _plan_index = 0
    _fallbacks_added = False
    _position = 0
    _deployment: DeploymentState | None = None  # the current candidate
    _model: str | None = None
    _retry = 0
    _pending_delay = 0.0
    _tried_context_fallback = False
    _rng: random.Random | None = None

    def __init__(
        self,
        router: Router,
        policy: ErrorPolicy,
        plan: RoutePlan,
        fallback: bool | Sequence[str] | None,
        deadline: float | None,
        rng: random.Random | None = None,
        *,
        started: float | None = None,
        resume: Slot | None = None,
        needs: Needs | None = None,
    ) -> None:
        self.router = router
        self.policy = policy
        self.started = started = time.monotonic() if started is None else started
        #: The caps of the route whose candidates are being tried (the plan's, then each fallback's).
        self._route = plan.timeouts
        if plan.timeouts is not None:
            deadline = plan.timeouts.deadline(deadline)
        self.deadline_at = started + deadline if deadline is not None and deadline > 0 else math.inf
        if rng is not None:
            self._rng = rng
        self._fallback = fallback
        self._needs = needs
        self._plan = plan
        self._candidates: Sequence[tuple[DeploymentState, str | None]] = router.ordered(plan)
        if resume is not None:
            # Take over from a first attempt made on the plan's first target without a run (see first_slot).
            self._position = 1
            self._deployment, self._model = resume.deployment, resume.model

    # -- iteration ------------------------------------------------------------------------------------------

    def first(self) -> Slot | None:
        """The first attempt's slot, or ``None`` when no candidate is available (no await: nothing to wait for)."""
        if not self._advance():
            return None
        return self._slot(0.0)

    async def next(self) -> Slot | None:
        """The next attempt after a failure: the same deployment after its backoff, else the next candidate."""
        waited = 0.0
        if self._pending_delay > 0 and self._deployment is not None:
            waited = self._pending_delay
            self._pending_delay = 0.0
            await asyncio.sleep(waited)
            if not admits(self._deployment):  # its circuit opened (or it left rotation) meanwhile: not retried
                return self._slot(0.0) if self._advance() else None
        else:
            self._pending_delay = 0.0
            if not self._advance():
                return None
        return self._slot(waited)

    def _slot(self, waited: float) -> Slot | None:
        deployment = self._deployment
        assert deployment is not None
        deadline_at = self.deadline_at
        if deadline_at == math.inf:
            timeout = None
        else:
            timeout = deadline_at - time.monotonic()
            if timeout <= 0:
                self._record_deadline()
                return None
        return Slot(deployment, self._model, self._retry, waited, timeout, self._route)

    def _advance(self) -> bool:
        """Move to the next available candidate (across plans); False when none is left."""
        self._retry = 0
        while True:
            candidates = self._candidates
            position = self._position
            while position < len(candidates):
                deployment, model = candidates[position]
                position += 1
                if self._needs is not None and self._skips(deployment, model):
                    continue
                if admits(deployment):
                    self._position = position
                    self._deployment, self._model = deployment, model
                    return True
            if not self._next_plan():
                self._position = position
                self._deployment = None
                return False

    def _skips(self, deployment: DeploymentState, model: str | None) -> bool:
        """True (and the reason in the trace) when ``deployment`` lacks what the request needs."""
        assert self._needs is not None
        reason = missing(deployment, self._needs)
        if reason is None:
            return False
        if not any(a.skipped and a.deployment == deployment.name for a in self.attempts):
            skip = Attempt(deployment.provider_name, model or deployment.model, deployment.name,
                           deployment.key_alias, skipped=reason)
            self._record(skip)
        return True

    def _all_plans(self) -> list[RoutePlan]:
        plans = self._plans
        if plans is None:
            plans = self._plans = [self._plan]
        return plans

    def _next_plan(self) -> bool:
        plans = self._all_plans()
        if not self._fallbacks_added:
            self._fallbacks_added = True
            plans.extend(self.router.fallback_plans(self._plan, self._fallback))
        self._plan_index += 1
        if self._plan_index >= len(plans):
            return False
        self._candidates = self.router.ordered(plans[self._plan_index])
        self._route = plans[self._plan_index].timeouts
        self._position = 0
        return True

    @property
    def route(self) -> str:
        """The name of the route the request started on."""
        return self._plan.name

    @property
    def attempts(self) -> list[Attempt]:
        """The attempts made so far, oldest first."""
        attempts = self._attempts
        return attempts if attempts is not None else []

    @property
    def errors(self) -> list[LLMError]:
        """The errors met so far, oldest first."""
        errors = self._errors
        return errors if errors is not None else []

    @property
    def path(self) -> list[str]:
        """The deployments tried, in order (the fallback path; skipped candidates are not in it)."""
        return [attempt.deployment or "" for attempt in self.attempts if attempt.skipped is None]

    @property
    def will_retry(self) -> bool:
        """True when the last failure will be retried on the same deployment."""
        return self._pending_delay > 0

    def remaining(self) -> float:
        """Seconds left before the request's deadline (infinite when there is none)."""
        return self.deadline_at - time.monotonic()

    # -- outcomes -------------------------------------------------------------------------------------------

    def _record(self, attempt: Attempt) -> Attempt:
        if self._attempts is None:
            self._attempts = [attempt]
        else:
            self._attempts.append(attempt)
        return attempt

    def succeeded(self, slot: Slot, sent: bool = True) -> Attempt:
        """Record a success: circuit closed, latency folded into the average (see :func:`record_success`)."""
        return self._record(record_success(slot, sent))

    def record_failure(self, slot: Slot, error: LLMError, *, count_health: bool = True) -> None:
        """Record a failed attempt (trace, circuit, counters) without deciding what comes next."""
        self._record(new_attempt(slot, error))
        self._add_error(error)
        deployment = slot.deployment
        if not count_health:
            deployment.circuit.release_probe(slot.generation)
        elif _counts_against_health(error):
            deployment.failures += 1
            deployment.circuit.record_failure(slot.generation)
        else:
            # The deployment answered: it is up, whatever it thought of the request.
            deployment.circuit.record_success(slot.generation)

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
            deployment.quarantine(f"{type(error).__name__}: the provider rejected the key ({error.status_code})")
        limit = self.policy.max_retries if deployment.max_retries is None else deployment.max_retries
        if action is Action.RETRY and self._retry < limit:
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                return  # not worth waiting for: next candidate
            delay = backoff_delay(self.policy, self._retry + 1, retry_after, self._rng, deployment.retry_delay)
            if time.monotonic() + delay >= self.deadline_at:
                return  # the wait would outlive the deadline: next candidate at once
            if not deployment.available:
                return  # its circuit just opened
            self._retry += 1
            self._pending_delay = max(delay, 1e-9)
            return
        if action is Action.CONTEXT_FALLBACK and not self._tried_context_fallback:
            self._tried_context_fallback = True
            plans = self._all_plans()
            target = plans[self._plan_index].context_fallback
            if target:
                plan = self.router.resolve(None, target)
                plans.insert(self._plan_index + 1, plan)
                self._candidates = ()  # leave the current plan: it cannot fit the prompt
                self._position = 0
        if isinstance(error, ModelNotFoundError):
            return

    def _add_error(self, error: LLMError) -> None:
        if self._errors is None:
            self._errors = [error]
        else:
            self._errors.append(error)

    def _record_deadline(self) -> None:
        self._add_error(RequestTimeoutError(
            f"request deadline exceeded after {time.monotonic() - self.started:.2f}s",
            retryable=False,
        ))

    def final_error(self, error: LLMError) -> LLMError:
        """``error`` with the attempt trace attached."""
        error.attempts = list(self.attempts)
        error.fallback_path = self.path
        return error

    def exhausted(self) -> LLMError:
        """The error to raise when no candidate is left: the only error, or all of them."""
        if not self.errors:
            skipped = "; ".join(f"{a.deployment}: {a.skipped}" for a in self.attempts if a.skipped)
            error: LLMError = unavailable_error((d for plan in self._all_plans() for d, _ in plan.targets), skipped)
        elif len(self.errors) == 1:
            error = self.errors[0]
        else:
            providers = {a.provider for a in self.attempts}
            error = AllProvidersFailedError(self.errors,
                                            provider=providers.pop() if len(providers) == 1 else None)
        return self.final_error(error)


def admits(deployment: DeploymentState) -> bool:
    """Whether ``deployment`` takes an attempt now: in rotation, healthy, and its circuit lets the call through.

    The one admission test of every attempt (:func:`first_slot` and :class:`RequestRun`). ``allow_request()``
    admits only what ``is_available()`` would, and takes a half-open circuit's probe: call it only for an attempt
    that will be made.
    """
    return deployment.disabled_reason is None and deployment.healthy and deployment.circuit.allow_request()


def first_slot(router: Router, plan: RoutePlan, deadline: float | None, needs: Needs | None = None) -> Slot | None:
    """The plan's first target as a slot when it is admitted now, without building a :class:`RequestRun`.

    Most requests succeed on their first attempt; they need no run at all. ``None`` when the first target is not
    admitted or the order depends on load balancing or on keys taking turns: then a run decides. After a failed
    first attempt, a run takes over with ``RequestRun(..., resume=slot)``.
    """
    targets = plan.targets
    if not targets or (len(targets) > 1 and (router.balancer is not None or plan.rotate
                                             or plan.strategy is not None)):
        return None
    deployment, model = targets[0]
    if needs is not None and missing(deployment, needs) is not None:
        return None  # a run records the skip
    if admits(deployment):
        route = plan.timeouts
        if route is not None:
            deadline = route.deadline(deadline)
        return Slot(deployment, model, 0, 0.0, deadline if deadline is not None and deadline > 0 else None, route)
    return None


def new_attempt(slot: Slot, error: LLMError | None) -> Attempt:
    """The trace entry of the attempt made in ``slot`` (counted on its deployment)."""
    deployment = slot.deployment
    deployment.requests += 1
    return Attempt(
        deployment.provider_name,
        slot.model or deployment.model,
        deployment.name,
        deployment.key_alias,
        None if error is None else type(error).__name__,
        None if error is None else getattr(error, "status_code", None),
        slot.waited,
        time.perf_counter() - slot.started,
    )


def record_success(slot: Slot, sent: bool = True) -> Attempt:
    """A successful attempt: circuit closed, latency folded into the deployment's average.

    ``sent=False``: the answer came from middleware (a cache hit) without reaching the deployment, which is then
    neither counted nor credited; a half-open circuit's probe it may have taken is handed back.
    """
    deployment = slot.deployment
    if not sent:
        deployment.circuit.release_probe(slot.generation)
        return Attempt(deployment.provider_name, slot.model or deployment.model, deployment.name,
                       deployment.key_alias, None, None, slot.waited, time.perf_counter() - slot.started)
    attempt = new_attempt(slot, None)
    deployment.circuit.record_success(slot.generation)
    deployment.record_latency(attempt.latency)
    return attempt


def annotate(result: Any, attempts: list[Attempt], attempt: Attempt) -> None:
    """Write the attempt trace (``attempts``, the last being ``attempt``) onto a successful response."""
    path = ([attempt.deployment or ""] if len(attempts) == 1
            else [a.deployment or "" for a in attempts if a.skipped is None])
    if attempt.model is None:  # the provider's own default answered: label the model it names
        attempt.model = getattr(result, "model", None) or None
    if type(result) in _TRACED_MODELS:
        # Our own response models and values of the declared types: skip pydantic's assignment machinery.
        values = result.__dict__
        values["attempts"] = attempts
        values["fallback_path"] = path
        values["deployment"] = attempt.deployment
        result.__pydantic_fields_set__.update(_TRACE_FIELDS)
        return
    result.attempts = attempts
    result.fallback_path = path
    result.deployment = attempt.deployment
