"""The request core: the attempt loop of whole answers, and what every request shares with streams.

:class:`RequestCore` is a base of :class:`~spoon_llm.manager.LLMManager`. Its :meth:`~RequestCore._execute` runs
chat, tools, completion and embed calls; :mod:`spoon_llm.request.stream` runs streams. Both go through the same
steps, written once here:

* a request begins (:meth:`~RequestCore._request_begun`) and ends once: :meth:`~RequestCore._request_ok`, or
  :meth:`~RequestCore._request_failed` (also for a cancelled request): stats, ``request_end`` events;
* an attempt begins (:meth:`~RequestCore._attempt_begun`: ``attempt_start``, the before hooks, then the provider);
  one that fails is handled by :meth:`~RequestCore._attempt_failed` then :meth:`~RequestCore._next_slot` (the
  policy decides: next slot or stop); one left by cancellation gives back what it held
  (:meth:`~RequestCore._release_attempt`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LLMError, ValidationError
from ..events import Event, new_request_id
from ..middleware.base import AttemptContext
from ..routing.attempts import RequestRun, Slot, annotate, first_slot, record_success
from ..routing.capabilities import Needs, request_needs
from ..types import Message, MessageInput
from .deadline import AttemptTimer, bounded, deadline_error

if TYPE_CHECKING:
    from ..events import EventBus
    from ..middleware.chain import MiddlewareChain
    from ..registry import LLMProviderRegistry
    from ..routing.policy import ErrorPolicy
    from ..routing.router import Router
    from ..types import Attempt, TokenUsage

__all__ = ["RequestCore", "as_list", "cache_options"]

_NEXT_STEP_KINDS = frozenset({"retry", "fallback"})


class RequestCore:
    """One request from call to answer: attempts, retries and fallback under one deadline, events, stats."""

    # Set by LLMManager.__init__.
    router: Router
    policy: ErrorPolicy
    registry: LLMProviderRegistry
    events: EventBus
    _chain: MiddlewareChain
    _stats: dict[str, int]
    _request_timeout: float

    def _start(self, provider: str | None, model: str | None, fallback: bool | Sequence[str] | None,
               deadline: float | None, needs: Needs | None = None) -> RequestRun:
        plan = self.router.resolve(provider, model)
        return RequestRun(self.router, self.policy, plan, fallback,
                          deadline if deadline is not None else self._request_timeout, needs=needs)

    @staticmethod
    def _call_kwargs(slot: Slot, kwargs: dict[str, Any]) -> dict[str, Any]:
        if slot.model is None and slot.timeout is None:
            return kwargs
        call = dict(kwargs)
        if slot.model is not None:
            call["model"] = slot.model
        if slot.timeout is not None:
            # Layers that never replace each other: the attempt's own timeout (the call's, else the provider's),
            # cut to the time left before the request's deadline.
            given = call.get("timeout")
            try:
                own = slot.deployment.config.timeout if given is None else float(given)
            except (TypeError, ValueError):
                raise ValidationError(f"timeout must be a number of seconds, not {given!r}") from None
            call["timeout"] = min(own, slot.timeout)
        return call

    # -- a request begins and ends (once) ----------------------------------------------------------------------

    def _request_begun(self, request_id: str, operation: str, tags: dict[str, str] | None, route: str) -> float:
        """Count the request in flight and announce it; returns when it started (``perf_counter``)."""
        stats = self._stats
        stats["requests"] += 1
        inflight = stats["inflight"] = stats["inflight"] + 1
        if inflight > stats["peak_inflight"]:
            stats["peak_inflight"] = inflight
        if "request_start" in self.events.kinds:
            self.events.emit(Event.request_start(request_id, operation, tags, route))
        return time.perf_counter()

    def _request_ok(self, request_id: str, operation: str, attempts: list[Attempt], started: float,
                    tags: dict[str, str] | None, response: Any, usage: TokenUsage | None, cost: Any,
                    chunk_count: int | None = None) -> None:
        """The request succeeded on the last of ``attempts`` (``cost``: a ``CostInfo`` or ``None``)."""
        stats = self._stats
        stats["inflight"] -= 1
        stats["successes"] += 1
        if len(attempts) > 1:
            self._count_retries(attempts)
        if "request_end" in self.events.kinds:
            total = None if cost is None or getattr(cost, "unpriced", False) else getattr(cost, "total_cost", None)
            self.events.emit(Event.request_ok(request_id, operation, attempts, time.perf_counter() - started,
                                              usage, total, response, tags, chunk_count))

    def _request_failed(self, request_id: str, operation: str, attempts: list[Attempt], started: float,
                        tags: dict[str, str] | None, error: LLMError | None, chunk_count: int | None = None) -> None:
        """The request failed with ``error``, or was cancelled (``error=None``; observers close what they opened)."""
        stats = self._stats
        stats["inflight"] -= 1
        stats["failures" if error is not None else "cancelled"] += 1
        if "request_end" in self.events.kinds:
            self.events.emit(Event.request_failed(request_id, operation, attempts, time.perf_counter() - started,
                                                  error, tags, chunk_count))

    def _count_retries(self, attempts: list[Attempt]) -> None:
        # A helper, not inline: generator expressions in the request coroutine would give it closure cells.
        first, last = attempts[0].deployment, attempts[-1].deployment
        self._stats["retries"] += sum(1 for a in attempts[1:] if a.deployment == first)
        if any(a.deployment != last for a in attempts):
            self._stats["fallbacks"] += 1

    # -- an attempt begins and ends ----------------------------------------------------------------------------

    def _attempt_begun(self, ctx: AttemptContext | None, request_id: str, operation: str, slot: Slot,
                       number: int) -> Awaitable[None] | None:
        """The ``attempt_start`` event, then the before hooks (an awaitable only if one of them must wait)."""
        if "attempt_start" in self.events.kinds:
            self.events.emit(Event.attempt_start(request_id, operation, slot.deployment, slot.model, number,
                                                 slot.waited))
        return None if ctx is None else self._chain.before(ctx)

    async def _prepare_attempt(self, pending: Awaitable[None] | None, deployment: Any) -> Any:
        """Wait for the before hooks (a rate limiter may wait here), then the deployment's provider."""
        if pending is not None:
            await pending
        return deployment.ready_provider() or await deployment.provider(self.registry)

    def _provider_within(self, pending: Awaitable[None] | None, slot: Slot) -> Awaitable[Any]:
        """:meth:`_prepare_attempt` within the deadline: limiter waits and provider set-up count against it too."""
        setup = self._prepare_attempt(pending, slot.deployment)
        return setup if slot.timeout is None else bounded(setup, slot)

    def _attempt_failed(self, request_id: str, operation: str, slot: Slot, number: int, error: LLMError) -> None:
        """Attempt ``number`` ended in ``error``: out of flight, and its ``attempt_end`` event."""
        slot.deployment.inflight -= 1
        if "attempt_end" in self.events.kinds:
            self.events.emit(Event.attempt_failed(request_id, operation, slot.deployment, slot.model, number, error,
                                                  time.perf_counter() - slot.started))

    async def _next_slot(self, run: RequestRun, slot: Slot, ctx: AttemptContext | None, error: LLMError,
                         request_id: str, operation: str, usage: TokenUsage | None = None) -> Slot | None:
        """After a failed attempt: the next slot, ``None`` when none is left, or ``error`` raised (policy: stop)."""
        chain = self._chain
        try:
            # A refusal by our own middleware (local rate limit) says nothing about the deployment.
            run.failed(slot, error, count_health=ctx is None or ctx.passed >= len(chain))
        finally:
            # After the circuit has seen the failure, so middleware observes its new state.
            await chain.finish_async(ctx, error=error, usage=usage)
        if self.events.kinds & _NEXT_STEP_KINDS:
            self.events.emit(Event.next_step("retry" if run.will_retry else "fallback", request_id, operation,
                                             slot.deployment, slot.model, len(run.attempts), error))
        return await run.next()

    def _release_attempt(self, slot: Slot, ctx: AttemptContext | None) -> Awaitable[None] | None:
        """An attempt left unfinished (cancelled, abandoned): out of flight, its probe and middleware holds back."""
        deployment = slot.deployment
        deployment.inflight -= 1
        deployment.circuit.release_probe(slot.generation)
        return self._chain.finish(ctx)

    # -- whole answers -----------------------------------------------------------------------------------------

    def _wrapped_attempt(self, ctx: AttemptContext, request_id: str, slot: Slot, number: int, subject: Any,
                         tools: Any, call: dict[str, Any]) -> Awaitable[Any]:
        """An attempt inside the ``around_attempt`` hooks: the before hooks, the call, then the after hooks.

        When the only wrapper offers plain halves (an in-memory cache), its lookup runs here and a miss goes on as
        a plain attempt: the request loop runs the after hooks, then :meth:`MiddlewareChain.finish` the store. So a
        cache miss makes no coroutine or closure of its own, and a hit none but the answer's await.

        Otherwise the after hooks run inside the wrappers on success (so a wrapper sees the priced answer); on
        failure the request loop runs them after the circuit has seen the error, as on the plain path.
        """
        if "attempt_start" in self.events.kinds:
            self._attempt_begun(None, request_id, ctx.operation, slot, number)
        chain = self._chain
        lookup = chain.lookup
        if lookup is not None:
            hit = lookup(ctx)
            if hit is not None:
                return _Answered(hit)
            pending = chain.before(ctx)
            deployment = slot.deployment
            instance = None if pending is not None else deployment.ready_provider()
            if instance is None:
                return self._prepared_attempt(ctx, pending, deployment, subject, tools, call)
            ctx.sent = True
            return _invoke(instance, ctx.operation, subject, tools, call)

        async def attempt() -> Any:
            pending = chain.before(ctx)
            deployment = slot.deployment
            instance = None if pending is not None else deployment.ready_provider()
            if instance is None:
                instance = await self._prepare_attempt(pending, deployment)
            ctx.sent = True
            # Within the deadline already: _execute bounds the whole wrapped attempt (one timer, not two).
            result = await _invoke(instance, ctx.operation, subject, tools, call)
            pending = chain.finish(ctx, result, getattr(result, "usage", None))
            if pending is not None:
                await pending
            return result

        return chain.wrap(ctx, attempt)

    async def _prepared_attempt(self, ctx: AttemptContext, pending: Awaitable[None] | None, deployment: Any,
                                subject: Any, tools: Any, call: dict[str, Any]) -> Any:
        """A missed lookup's attempt when a before hook must wait or the provider is not set up yet."""
        instance = await self._prepare_attempt(pending, deployment)
        ctx.sent = True
        return await _invoke(instance, ctx.operation, subject, tools, call)

    async def _execute(
        self,
        operation: str,
        subject: Any,
        kwargs: dict[str, Any],
        provider: str | None,
        model: str | None,
        fallback: bool | Sequence[str] | None,
        deadline: float | None,
        messages: Sequence[Any] | None = None,
        tools: Any = None,
    ) -> Any:
        """One request: ``instance.<operation>(subject[, tools], **kwargs)`` on each slot, until one answers.

        This is the hot path of every non-streamed call; it is written flat (one coroutine, no per-attempt
        closures or iterators) because what it allocates and awaits is most of the manager's cost per request.
        """
        tags = kwargs.pop("tags", None) if kwargs else None
        if provider is not None or deadline is not None or tags is not None or fallback is not None or (
                model is not None and model.__class__ is not str):
            check_call(provider, model, deadline, tags, fallback)
        caching = (cache_options(kwargs) if kwargs and ("cache" in kwargs or "cache_namespace" in kwargs)
                   else None)
        router = self.router
        plan = router.resolve(provider, model)
        needs = request_needs(operation, messages, tools, kwargs)
        if deadline is None:
            deadline = self._request_timeout
        begun = time.monotonic() if deadline is not None else None
        # Built on the first failure (or when the first target is not admitted): most requests never need one.
        run: RequestRun | None = None
        attempts: list[Attempt] = []
        kinds = self.events.kinds
        chain = self._chain
        request_id = new_request_id() if kinds or chain else ""
        started = self._request_begun(request_id, operation, tags, plan.name)
        try:
            slot = first_slot(router, plan, deadline, needs)
            if slot is None:
                run = RequestRun(router, self.policy, plan, fallback, deadline, started=begun, needs=needs)
                slot = run.first()
            while slot is not None:
                deployment = slot.deployment
                call = kwargs if slot.model is None and slot.timeout is None else self._call_kwargs(slot, kwargs)
                done = 0 if run is None else len(run.attempts)
                ctx = None if not chain else AttemptContext(
                    request_id, operation, deployment, slot.model, messages, call, tags, done)
                if ctx is not None and chain.arounds:
                    ctx.tools, ctx.subject = tools, subject
                    if caching is not None:
                        ctx.cache, ctx.cache_namespace = caching
                deployment.inflight += 1
                try:
                    if ctx is None or not chain.arounds:
                        pending = self._attempt_begun(ctx, request_id, operation, slot, done + 1) if kinds or ctx \
                            else None
                        instance = None if pending is not None else deployment.ready_provider()
                        if instance is None:
                            instance = await self._provider_within(pending, slot)
                        if ctx is not None:
                            ctx.sent = True
                        work = _invoke(instance, operation, subject, tools, call)
                    else:
                        work = self._wrapped_attempt(ctx, request_id, slot, done + 1, subject, tools, call)
                    if slot.timeout is None:
                        result = await work
                    else:  # bounded() inline, one timer: no coroutine or context manager per attempt
                        timer = AttemptTimer(asyncio.get_running_loop(), max(slot.ends - time.monotonic(), 0.0))
                        try:
                            result = await work
                        except asyncio.CancelledError:
                            if timer.expired():
                                raise deadline_error(slot) from None
                            raise
                        finally:
                            timer.cancel()
                except LLMError as exc:
                    self._attempt_failed(request_id, operation, slot, done + 1, exc)
                    if run is None:  # out of flight first: a balancer orders the candidates by load
                        run = RequestRun(router, self.policy, plan, fallback, deadline, started=begun, resume=slot,
                                         needs=needs)
                    slot = await self._next_slot(run, slot, ctx, exc, request_id, operation)
                    continue
                except BaseException:
                    pending = self._release_attempt(slot, ctx)
                    if pending is not None:
                        await pending
                    raise
                deployment.inflight -= 1
                sent = ctx is None or ctx.sent
                if run is None:
                    attempt = record_success(slot, sent)
                    attempts = [attempt]
                else:
                    attempt = run.succeeded(slot, sent)
                    attempts = run.attempts
                if ctx is not None:
                    pending = chain.finish(ctx, result, getattr(result, "usage", None))
                    if pending is not None:
                        await pending
                annotate(result, attempts, attempt)  # also labels the model that answered
                if "attempt_end" in kinds:
                    self.events.emit(Event.attempt_ok(request_id, operation, deployment, attempt, len(attempts),
                                                      getattr(result, "usage", None), sent))
                break
            else:
                assert run is not None  # a slot only ever runs out inside a run
                raise run.exhausted()
        except LLMError as exc:
            self._request_failed(request_id, operation, run.attempts if run is not None else attempts, started, tags,
                                 exc)
            raise
        except asyncio.CancelledError:
            self._request_failed(request_id, operation, run.attempts if run is not None else attempts, started, tags,
                                 None)
            raise
        except BaseException:
            self._stats["inflight"] -= 1  # not ours to count (a bug below us): only out of flight
            raise
        self._request_ok(request_id, operation, attempts, started, tags, result, getattr(result, "usage", None),
                         getattr(result, "cost", None))
        return result


def check_call(provider: Any, model: Any, deadline: Any, tags: Any, fallback: Any = None) -> None:
    """Refuse call arguments of the wrong kind before anything begins (a deadline of 0 or less would unbound it)."""
    if provider is not None and not isinstance(provider, str):
        raise ValidationError(f"provider must be a provider section's name, not {type(provider).__name__}")
    if model is not None and not isinstance(model, str):
        raise ValidationError(f"model must be a model name or alias, not {type(model).__name__}")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not deadline > 0):
        raise ValidationError(f"deadline must be a positive number of seconds, not {deadline!r}")
    if tags is not None and type(tags) is not dict and not isinstance(tags, Mapping):
        raise ValidationError(f"tags must be a mapping of names to values (e.g. {{'team': 'research'}}), not "
                              f"{type(tags).__name__}")
    if fallback is not None and not isinstance(fallback, (bool, str, list, tuple)):
        raise ValidationError(f"fallback must be True, False, a provider (or alias) name or a list of them, not "
                              f"{type(fallback).__name__}")


def cache_options(kwargs: dict[str, Any]) -> tuple[bool | str | float | None, str | None]:
    """Take the per-call cache settings out of the provider's keywords (``cache=``, ``cache_namespace=``)."""
    directive = kwargs.pop("cache", None)
    namespace = kwargs.pop("cache_namespace", None)
    if not (directive is None or isinstance(directive, (bool, int, float)) or directive == "refresh"):
        raise ValidationError(f"cache={directive!r}: use True, False, 'refresh' or a time to live in seconds")
    if isinstance(directive, (int, float)) and not isinstance(directive, bool) and directive <= 0:
        raise ValidationError(f"cache={directive!r}: a time to live must be positive")
    return directive, None if namespace is None else str(namespace)


class _Answered:
    """An answer already at hand, as an awaitable (lighter than a coroutine made to return it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # never reached: it makes this a generator, which an await runs to its return at once


def _invoke(instance: Any, operation: str, subject: Any, tools: Any, call: dict[str, Any]) -> Awaitable[Any]:
    method = getattr(instance, operation)
    return method(subject, **call) if tools is None else method(subject, tools, **call)  # type: ignore[no-any-return]


def as_list(messages: str | MessageInput | Sequence[MessageInput]) -> list[Any]:
    """The conversation as a list, without validating it here: providers map dicts and messages directly."""
    if type(messages) is list:
        return messages  # read, never changed, by the providers: no copy on the request path
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (Message, Mapping)):  # an ABC check: slow, so after the common case
        return [messages]
    return list(messages)
