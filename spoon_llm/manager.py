"""``LLMManager``: the public facade applications call.

It resolves a call to deployments (provider, key, model), tries them with retries, circuit breaking, load
balancing and fallback under one deadline, and returns the normalised answer with the trace of attempts.

Example::

    async with LLMManager() as manager:
        response = await manager.chat([{"role": "user", "content": "Hi"}], model="sonnet")
        print(response.content, response.fallback_path)
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config.manager import ConfigurationManager
from .errors import InvalidRequestError, LLMError, RequestTimeoutError, StreamInterruptedError, ValidationError
from .events import Event, EventBus, EventKind, new_request_id
from .interface import StreamCallback
from .middleware.base import AttemptContext, Middleware
from .middleware.chain import MiddlewareChain
from .registry import LLMProviderRegistry, get_global_registry
from .routing.attempts import RequestRun, Slot, annotate, first_slot, record_success
from .routing.balancer import Balancer, Strategy
from .routing.capabilities import Needs, request_needs
from .routing.circuit import CircuitBreaker, CircuitState
from .routing.policy import ErrorPolicy
from .routing.resume import accepts_prefill
from .routing.router import Router
from .routing.timeouts import pop_stream_options, stream_timeout_error, stream_timeouts
from .types import (
    Attempt,
    EmbeddingResponse,
    LLMResponse,
    LLMResponseChunk,
    Message,
    MessageInput,
    TokenUsage,
    ToolSpec,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from .health import HealthMonitor
    from .monitoring.metrics import MetricsCollector
    from .sync import SyncLLMManager

__all__ = ["LLMManager", "get_llm_manager", "set_llm_manager"]

_NEXT_STEP_KINDS = frozenset({"retry", "fallback"})
#: Keywords that may need the layer above one call (spoon_llm.structured._run): Python tools, re-asks, the tool loop.
_LAYER_KEYS = frozenset({"tools", "output_retries", "run_tools", "max_turns", "tool_errors"})

#: Seconds one request may take in all (limiter waits, set-up, retries, backoffs, fallbacks) when neither the call
#: (``deadline=``) nor the configuration (``request_timeout``) bounds it.
DEFAULT_REQUEST_TIMEOUT = 600.0

if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - 3.10
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _timeout(seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            yield
        except asyncio.CancelledError as exc:
            if not fired:
                raise  # the caller cancelled the request: not a timeout
            raise asyncio.TimeoutError from exc
        finally:
            handle.cancel()


class LLMManager:
    """Fallback chains, retries, circuit breaking and load balancing over every configured deployment.

    ``fallback`` (per call): ``None`` (default) or ``True`` falls back along the route's own ``fallback`` list,
    else the global ``fallback_chain`` — also when the caller named a provider; ``False`` tries only what was
    named (still retrying and balancing over its keys); a list names the fallbacks explicitly.
    ``deadline`` (per call, seconds) bounds the whole request, retries, backoffs and fallbacks included; it
    defaults to ``request_timeout`` from the configuration.
    ``middleware`` is added to the chain the configuration describes (cache, budgets, rate limits, cost
    accounting; see :func:`spoon_llm.middleware.defaults.build_middleware`): after it, or before it for a
    middleware whose ``placement`` is ``"outer"``. ``default_middleware=False`` runs only ``middleware``; a list
    that already holds one of the configured kinds (e.g. ``build_middleware(config)``) is taken as the whole chain.
    A configured budget or rate limit that nothing enforces is warned about (``ConfigWarning``).

    ``with LLMManager() as m:`` (blocking code) and ``m.close()`` release what ``async with`` and ``cleanup()`` do.
    ``monitoring`` (default: the configuration's ``monitoring``, on) feeds the process-wide
    ``get_metrics_collector()`` (and ``get_debug_logger()`` once it is asked for), as the older manager did;
    ``False`` attaches nothing, a :class:`~spoon_llm.monitoring.MetricsCollector` is fed instead.
    """

    def __init__(
        self,
        config_manager: ConfigurationManager | None = None,
        *,
        registry: LLMProviderRegistry | None = None,
        policy: ErrorPolicy | None = None,
        circuit_breaker: Mapping[str, Any] | None = None,
        load_balancing: Strategy | None = None,
        middleware: Sequence[Middleware] | None = None,
        observers: Sequence[Any] = (),
        monitoring: bool | MetricsCollector | None = None,
        default_middleware: bool = True,
    ) -> None:
        self.config_manager = config_manager if config_manager is not None else ConfigurationManager()
        self.registry = registry if registry is not None else get_global_registry()
        retry = self.config_manager.retry
        self.policy = policy if policy is not None else ErrorPolicy(
            max_retries=retry.max_retries, initial_backoff=retry.initial_backoff, max_backoff=retry.max_backoff,
            max_retry_after=retry.max_retry_after, jitter=retry.jitter,
        )
        self._circuit_settings = dict(circuit_breaker or {})
        #: Request lifecycle events; subscribe with :meth:`add_observer`.
        self.events = EventBus()
        # The configured economics (budget guard when budgets are set, rate limiter, cost accounting) plus yours.
        from .middleware.defaults import compose_middleware, unenforced_settings

        chain, self._owned_middleware = compose_middleware(
            self.config_manager, middleware, default_middleware=default_middleware, events=self.events)
        self._chain = MiddlewareChain(chain)
        for problem in unenforced_settings(self.config_manager.config, chain):
            import warnings

            from .config.sources import ConfigWarning

            warnings.warn(problem, ConfigWarning, stacklevel=2)
        for observer in observers:
            self.events.add(observer)
        self._plugin_observers()
        #: The collector fed by default (``get_status()["metrics"]`` reads it); ``None`` with monitoring off.
        self.metrics: MetricsCollector | None = None
        if monitoring is not False and (monitoring is not None or self.config_manager.config.monitoring):
            from .monitoring._setup import attach_default_monitoring

            self.metrics = attach_default_monitoring(self, monitoring if not isinstance(monitoring, bool) else None)
        self.router = Router(self.config_manager, self.registry, self._new_circuit)
        strategy = load_balancing or self.config_manager.config.load_balancing
        if strategy is not None:
            self.router.balancer = Balancer(strategy)
        # No request may hang forever: without a configured request_timeout, DEFAULT_REQUEST_TIMEOUT bounds it.
        configured = self.config_manager.config.request_timeout
        self._request_timeout = configured if configured is not None else DEFAULT_REQUEST_TIMEOUT
        self._stats = {"requests": 0, "successes": 0, "failures": 0, "cancelled": 0, "fallbacks": 0, "retries": 0,
                       "inflight": 0, "peak_inflight": 0}
        self._health_monitor: HealthMonitor | None = None
        self._sync: SyncLLMManager | None = None
        self._lock = threading.Lock()

    def _new_circuit(self, deployment: str) -> CircuitBreaker:
        def changed(old: CircuitState, new: CircuitState) -> None:
            if "circuit_change" in self.events.kinds:
                self.events.emit(Event("circuit_change", "", deployment=deployment,
                                       data={"old": old.value, "new": new.value}))

        return CircuitBreaker(on_change=changed, **self._circuit_settings)

    def _plugin_observers(self) -> None:
        """Observers that installed plugins subscribe through the ``spoon_llm_register_observers`` hook."""
        registry = self.registry
        registry.list_providers()  # loads the plugins once
        hook = registry.plugin_manager.hook.spoon_llm_register_observers
        for impl in hook.get_hookimpls():
            try:
                impl.function(register=self.events.add)
            except Exception as exc:  # a broken plugin must not break the manager
                import warnings

                from .registry import PluginLoadWarning

                warnings.warn(f"spoon-llm plugin {impl.plugin_name!r} failed to register observers: {exc!r}",
                              PluginLoadWarning, stacklevel=3)

    def add_observer(self, observer: Any) -> None:
        """Subscribe to request lifecycle events (an object with ``on_event(event)`` or a callable)."""
        self.events.add(observer)

    def remove_observer(self, observer: Any) -> None:
        """Unsubscribe an observer."""
        self.events.remove(observer)

    def add_middleware(self, middleware: Middleware) -> None:
        """Append a middleware to the attempt path (runs after those already present)."""
        self._chain.append(middleware)

    @property
    def middleware(self) -> list[Middleware]:
        """The middleware chain, in order."""
        return list(self._chain.middleware)

    # -- the request path -----------------------------------------------------------------------------------

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
            own = slot.deployment.config.timeout if given is None else float(given)
            call["timeout"] = min(own, slot.timeout)
        return call

    def _emit(self, kind: EventKind, request_id: str, operation: str, slot: Slot | None = None,
              **fields: Any) -> None:
        if slot is not None:
            deployment = slot.deployment
            fields.setdefault("provider", deployment.provider_name)
            fields.setdefault("model", slot.model or deployment.model)
            fields.setdefault("deployment", deployment.name)
            fields.setdefault("key_alias", deployment.key_alias)
        self.events.emit(Event(kind, request_id, operation, **fields))

    def _emit_next_step(self, run: RequestRun, request_id: str, operation: str, slot: Slot,
                        error: LLMError) -> None:
        kind: EventKind = "retry" if run.will_retry else "fallback"
        self._emit(kind, request_id, operation, slot, error=error, attempt=len(run.attempts),
                   data={"reason": type(error).__name__})

    def _count_retries(self, attempts: list[Attempt]) -> None:
        # A helper, not inline: generator expressions in the request coroutine would give it closure cells.
        first, last = attempts[0].deployment, attempts[-1].deployment
        self._stats["retries"] += sum(1 for a in attempts[1:] if a.deployment == first)
        if any(a.deployment != last for a in attempts):
            self._stats["fallbacks"] += 1

    def _begin_attempt(self, ctx: AttemptContext | None, request_id: str, operation: str, slot: Slot,
                       done: int) -> Awaitable[None] | None:
        """The ``attempt_start`` event, then the before hooks (an awaitable only if one of them must wait)."""
        if "attempt_start" in self.events.kinds:
            self._emit("attempt_start", request_id, operation, slot, attempt=done + 1, waited=slot.waited)
        return None if ctx is None else self._chain.before(ctx)

    def _context(self, request_id: str, operation: str, slot: Slot, messages: Sequence[Any] | None,
                 call: dict[str, Any], tags: dict[str, str] | None, attempt: int) -> AttemptContext | None:
        if not self._chain:
            return None
        return AttemptContext(request_id, operation, slot.deployment, slot.model, messages, call, tags, attempt)

    async def _prepare_attempt(self, pending: Awaitable[None] | None, deployment: Any) -> Any:
        """Wait for the before hooks (a rate limiter may wait here), then the deployment's provider."""
        if pending is not None:
            await pending
        return deployment.ready_provider() or await deployment.provider(self.registry)

    async def _wrapped_attempt(self, ctx: AttemptContext, request_id: str, slot: Slot, done: int, subject: Any,
                               tools: Any, call: dict[str, Any]) -> Any:
        """An attempt inside the ``around_attempt`` hooks: the before hooks, the call, then the after hooks.

        The after hooks run here on success (so a wrapper sees the priced answer); on failure the request loop
        runs them after the circuit has seen the error, as on the plain path.
        """
        if "attempt_start" in self.events.kinds:
            self._emit("attempt_start", request_id, ctx.operation, slot, attempt=done + 1, waited=slot.waited)
        chain = self._chain

        async def attempt() -> Any:
            pending = chain.before(ctx)
            if pending is not None:
                await pending
            deployment = slot.deployment
            instance = deployment.ready_provider() or await deployment.provider(self.registry)
            ctx.sent = True
            work = _invoke(instance, ctx.operation, subject, tools, call)
            result = await (work if slot.timeout is None else _bounded(work, slot))
            await chain.finish_async(ctx, result, getattr(result, "usage", None))
            return result

        return await chain.wrap(ctx, attempt)

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
        cache_options = (_cache_options(kwargs) if kwargs and ("cache" in kwargs or "cache_namespace" in kwargs)
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
        events = self.events
        kinds = events.kinds
        chain = self._chain
        request_id = new_request_id() if kinds or chain else ""
        stats = self._stats
        stats["requests"] += 1
        inflight = stats["inflight"] = stats["inflight"] + 1
        if inflight > stats["peak_inflight"]:
            stats["peak_inflight"] = inflight
        started = time.perf_counter()
        if "request_start" in kinds:
            self._emit("request_start", request_id, operation, tags=tags, data={"route": plan.name})
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
                    if cache_options is not None:
                        ctx.cache, ctx.cache_namespace = cache_options
                deployment.inflight += 1
                try:
                    if ctx is None or not chain.arounds:
                        pending = self._begin_attempt(ctx, request_id, operation, slot, done) if kinds or ctx else None
                        instance = None if pending is not None else deployment.ready_provider()
                        if instance is None:
                            # Limiter waits and provider set-up count against the deadline too.
                            setup = self._prepare_attempt(pending, deployment)
                            instance = await (setup if slot.timeout is None else _bounded(setup, slot))
                        if ctx is not None:
                            ctx.sent = True
                        work = _invoke(instance, operation, subject, tools, call)
                        result = await (work if slot.timeout is None else _bounded(work, slot))
                    else:
                        work = self._wrapped_attempt(ctx, request_id, slot, done, subject, tools, call)
                        result = await (work if slot.timeout is None else _bounded(work, slot))
                except LLMError as exc:
                    deployment.inflight -= 1
                    if run is None:
                        run = RequestRun(router, self.policy, plan, fallback, deadline, started=begun, resume=slot,
                                         needs=needs)
                    if "attempt_end" in kinds:
                        self._emit("attempt_end", request_id, operation, slot, success=False, error=exc,
                                   attempt=done + 1, latency=time.perf_counter() - slot.started)
                    try:
                        # A refusal by our own middleware (local rate limit) says nothing about the deployment.
                        run.failed(slot, exc, count_health=ctx is None or ctx.passed == len(chain))
                    finally:
                        # After the circuit has seen the failure, so middleware observes its new state.
                        pending = chain.finish(ctx, error=exc)
                        if pending is not None:
                            await pending
                    if kinds & _NEXT_STEP_KINDS:
                        self._emit_next_step(run, request_id, operation, slot, exc)
                    slot = await run.next()
                    continue
                except BaseException:
                    deployment.inflight -= 1
                    deployment.circuit.release_probe(slot.generation)
                    await chain.finish_async(ctx)
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
                    self._emit("attempt_end", request_id, operation, slot, success=True, attempt=len(attempts),
                               latency=attempt.latency, usage=getattr(result, "usage", None), model=attempt.model)
                if len(attempts) > 1:
                    self._count_retries(attempts)
                break
            else:
                assert run is not None  # a slot only ever runs out inside a run
                raise run.exhausted()
        except LLMError as exc:
            stats["failures"] += 1
            if "request_end" in kinds:
                attempts = run.attempts if run is not None else attempts
                self._emit("request_end", request_id, operation, success=False, error=exc, tags=tags,
                           attempt=len(attempts), latency=time.perf_counter() - started,
                           data={"attempts": attempts})
            raise
        except asyncio.CancelledError:
            stats["cancelled"] += 1
            if "request_end" in kinds:  # observers close what they opened for this request
                attempts = run.attempts if run is not None else attempts
                self._emit("request_end", request_id, operation, success=False, tags=tags,
                           attempt=len(attempts), latency=time.perf_counter() - started,
                           data={"attempts": attempts, "cancelled": True})
            raise
        finally:
            stats["inflight"] -= 1
        stats["successes"] += 1
        if "request_end" in kinds:
            # Built inline: this event is on every observed request's path.
            last = attempts[-1]
            cost = getattr(result, "cost", None)
            events.emit(Event(
                "request_end", request_id, operation, last.provider, last.model, last.deployment, last.key_alias,
                len(attempts), True, None, time.perf_counter() - started, None, getattr(result, "usage", None),
                cost.total_cost if cost is not None and not cost.unpriced else None, None, result, tags,
                {"attempts": attempts},
            ))
        return result

    async def chat(
        self,
        messages: str | MessageInput | Sequence[MessageInput],
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool | Sequence[str] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> LLMResponse:
        """Send a conversation and return the complete answer (see the class docstring for routing).

        ``tags={"user": ..., "team": ...}`` labels the request for cost tracking and metrics.

        ``response_format=MyModel`` (a pydantic model, a type such as ``list[Item]``, or a JSON schema) returns
        the answer validated in ``response.parsed`` (``output_retries=N`` re-asks with the errors); ``tools=`` may
        hold Python functions and pydantic models, and ``run_tools=True, max_turns=N`` runs the functions the
        model calls until it answers (see :mod:`spoon_llm.structured` and :mod:`spoon_llm.tools`).
        """
        if kwargs and _wants_layer(kwargs):
            from .structured._run import layered_chat

            return await layered_chat(self, messages, {**kwargs, "provider": provider, "model": model,
                                                       "fallback": fallback, "deadline": deadline})
        conversation = _as_list(messages)
        result: LLMResponse = await self._execute("chat", conversation, kwargs, provider, model, fallback,
                                                  deadline, conversation)
        return result

    async def chat_with_tools(
        self,
        messages: str | MessageInput | Sequence[MessageInput],
        tools: Sequence[ToolSpec | Mapping[str, Any]],
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool | Sequence[str] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> LLMResponse:
        """Chat with tools the model may call; calls come back in ``response.tool_calls``.

        Tools may be Python functions and pydantic models as with :meth:`chat` (and ``run_tools=True`` runs them).
        """
        if kwargs or any(not isinstance(t, (ToolSpec, Mapping)) for t in tools):
            kwargs["tools"] = tools
            if _wants_layer(kwargs):
                return await self.chat(messages, provider=provider, model=model, fallback=fallback,
                                       deadline=deadline, **kwargs)
            del kwargs["tools"]
        conversation = _as_list(messages)
        result: LLMResponse = await self._execute("chat_with_tools", conversation, kwargs, provider, model,
                                                  fallback, deadline, conversation, tools)
        return result

    async def completion(
        self,
        prompt: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool | Sequence[str] | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> LLMResponse:
        """Complete a bare prompt."""
        result: LLMResponse = await self._execute("completion", prompt, kwargs, provider, model, fallback,
                                                  deadline, [{"role": "user", "content": prompt}])
        return result

    async def embed(
        self,
        inputs: str | Sequence[str],
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool | Sequence[str] | None = False,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> EmbeddingResponse:
        """Embed one text or a batch. Fallback is off by default: vectors of different models do not mix."""
        result: EmbeddingResponse = await self._execute("embed", inputs, kwargs, provider, model, fallback,
                                                        deadline)
        return result

    async def chat_stream(
        self,
        messages: str | MessageInput | Sequence[MessageInput],
        *,
        provider: str | None = None,
        model: str | None = None,
        fallback: bool | Sequence[str] | None = None,
        deadline: float | None = None,
        callbacks: Sequence[StreamCallback] | None = None,
        resume_on_interrupt: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[LLMResponseChunk]:
        """Stream the answer, falling back transparently until the first chunk reached the caller.

        After that a failure raises :class:`StreamInterruptedError` with the text and usage delivered so far (the
        caller never sees text twice). With ``resume_on_interrupt=True`` the next candidate continues instead,
        given the partial answer as an assistant prefill where it accepts one (its chunks' ``content`` includes the
        earlier part), else asked again from the start: then ``chunk.metadata["restarted"]`` is true on the first
        chunk of the new answer, whose ``content`` replaces what the caller had. A candidate that rejects the
        prefill is asked again without it. The final error always names the original interruption.

        ``first_token_timeout=`` and ``stream_idle_timeout=`` (seconds; default the provider's settings of the same
        names, else its ``timeout``) bound the wait for the first chunk and between chunks, within the deadline;
        a late first token is retried or falls back like any timeout.
        With a typed ``response_format`` the final chunk carries the validated answer in ``parsed``.
        """
        if kwargs and _wants_layer(kwargs):
            from .structured._run import layered_stream

            async for layered in layered_stream(self, messages, {**kwargs, "provider": provider, "model": model,
                                                                 "fallback": fallback, "deadline": deadline,
                                                                 "callbacks": callbacks,
                                                                 "resume_on_interrupt": resume_on_interrupt}):
                yield layered
            return
        conversation = _as_list(messages)
        tags = kwargs.pop("tags", None)
        cache_options = _cache_options(kwargs) if "cache" in kwargs or "cache_namespace" in kwargs else None
        stream_options = pop_stream_options(kwargs)
        run = self._start(provider, model, fallback, deadline, request_needs("chat_stream", conversation, None, kwargs))
        request_id = new_request_id()
        operation = "chat_stream"
        events = self.events
        stats = self._stats
        stats["requests"] += 1
        stats["inflight"] += 1
        if stats["inflight"] > stats["peak_inflight"]:
            stats["peak_inflight"] = stats["inflight"]
        started = time.perf_counter()
        if "request_start" in events.kinds:
            self._emit("request_start", request_id, operation, tags=tags, data={"route": run.route})
        delivered = ""
        usage: TokenUsage | None = None
        stream_cost: float | None = None
        chunk_count = 0
        interrupted: LLMError | None = None
        chain = self._chain
        finished = False
        refused_prefill: set[str] | None = None
        try:
            slot = run.first()
            while slot is not None:
                deployment = slot.deployment
                deployment.inflight += 1
                # Resume from a prefill only where the candidate continues one; elsewhere restart the answer.
                prefill = bool(delivered) and accepts_prefill(deployment) and (
                    refused_prefill is None or deployment.name not in refused_prefill)
                restarted = bool(delivered) and not prefill
                prefix = delivered if prefill else ""
                request = conversation if not prefill else [
                    *conversation, Message(role="assistant", content=delivered)]
                call = self._call_kwargs(slot, kwargs)
                ctx = self._context(request_id, operation, slot, request, call, tags, len(run.attempts))
                if ctx is not None and cache_options is not None:
                    ctx.cache, ctx.cache_namespace = cache_options
                finished = False
                sent_here = False
                stream: AsyncIterator[LLMResponseChunk] | None = None
                try:
                    if ctx is None or not chain.stream_arounds:
                        pending = self._begin_attempt(ctx, request_id, operation, slot, len(run.attempts))
                        instance = None if pending is not None else deployment.ready_provider()
                        if instance is None:  # limiter waits and set-up count against the deadline too
                            setup = self._prepare_attempt(pending, deployment)
                            instance = await (setup if slot.timeout is None else _bounded(setup, slot))
                        if ctx is not None:
                            ctx.sent = True
                        stream = instance.chat_stream(request, callbacks=None, **call)
                    else:
                        if "attempt_start" in events.kinds:
                            self._emit("attempt_start", request_id, operation, slot, attempt=len(run.attempts) + 1,
                                       waited=slot.waited)
                        stream = chain.wrap_stream(ctx, _StreamOpener(self, ctx, slot, request, call))
                    iterator = stream.__aiter__()
                    first_wait, idle_wait = stream_timeouts(deployment.config, stream_options)
                    while True:
                        limit = idle_wait if sent_here else first_wait
                        left = max(run.remaining(), 0.0)
                        try:
                            async with _timeout(min(limit, left)):
                                chunk = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                        except asyncio.TimeoutError as exc:
                            raise stream_timeout_error(limit, left, sent_here, deployment.provider_name,
                                                       slot.model) from exc
                        if prefix:
                            chunk.content = prefix + chunk.content
                        elif restarted and not sent_here:  # the caller's text so far is replaced from here
                            chunk.metadata = {**chunk.metadata, "restarted": True}
                        delivered = chunk.content
                        chunk_count += 1
                        if chunk.usage is not None:
                            usage = chunk.usage
                        if chunk.kind == "final":
                            attempt = run.succeeded(slot, ctx is None or ctx.sent)
                            if attempt.model is None:  # the provider's default answered: label its model
                                attempt.model = chunk.model or None
                            await chain.finish_async(ctx, response=chunk, usage=usage)
                            final_cost = getattr(chunk, "cost", None) or chunk.metadata.get("cost")
                            if final_cost is not None and not getattr(final_cost, "unpriced", False):
                                stream_cost = getattr(final_cost, "total_cost", None)
                            finished = True  # its after hooks have run
                            chunk.metadata = {**chunk.metadata, "attempts": [a.model_dump() for a in run.attempts],
                                              "fallback_path": list(run.path), "deployment": attempt.deployment}
                            if "attempt_end" in events.kinds:
                                self._emit("attempt_end", request_id, operation, slot, success=True,
                                           attempt=len(run.attempts), latency=attempt.latency, usage=usage,
                                           model=attempt.model)
                        if not sent_here and chunk.kind != "final":
                            # Who answers and what failed first, for relays whose headers precede the body.
                            chunk.metadata = {**chunk.metadata, "deployment": deployment.name}
                            if run.attempts:
                                chunk.metadata["attempts"] = [a.model_dump() for a in run.attempts]
                        if not sent_here and not prefix and "first_token" in events.kinds:
                            self._emit("first_token", request_id, operation, slot,
                                       model=slot.model or deployment.model or chunk.model or None,
                                       latency=time.perf_counter() - started)
                        sent_here = True
                        for callback in callbacks or ():
                            outcome = callback(chunk)
                            if asyncio.iscoroutine(outcome):
                                await outcome
                        yield chunk
                except LLMError as exc:
                    deployment.inflight -= 1
                    if "attempt_end" in events.kinds:
                        self._emit("attempt_end", request_id, operation, slot, success=False, error=exc,
                                   attempt=len(run.attempts) + 1, latency=time.perf_counter() - slot.started)
                    local = ctx is not None and ctx.passed < len(chain)
                    if not sent_here and not delivered:
                        try:
                            run.failed(slot, exc, count_health=not local)
                        finally:
                            await chain.finish_async(ctx, error=exc, usage=usage)
                        if events.kinds & _NEXT_STEP_KINDS:
                            self._emit_next_step(run, request_id, operation, slot, exc)
                        slot = await run.next()
                        continue
                    if prefill and not sent_here and isinstance(exc, InvalidRequestError):
                        # The candidate refused the prefill: ask it again without one (a clean restart).
                        run.record_failure(slot, exc)
                        await chain.finish_async(ctx, error=exc, usage=usage)
                        refused_prefill = {*(refused_prefill or ()), deployment.name}
                        continue
                    first_cut = interrupted is None
                    if first_cut:
                        interrupted = exc  # the original interruption: what the final error names
                    resumed = False
                    if resume_on_interrupt:
                        try:
                            run.failed(slot, exc)
                            resumed = True
                        except LLMError:
                            pass  # the policy says stop: report the interruption below
                    else:
                        run.record_failure(slot, exc)
                    await chain.finish_async(ctx, error=exc, usage=usage)
                    if resumed:
                        slot = await run.next()
                        continue
                    assert interrupted is not None
                    raise run.final_error(StreamInterruptedError(
                        f"the stream failed after output reached the caller: {interrupted}"
                        + ("" if first_cut else f"; resuming it failed too: {exc}"),
                        partial_content=delivered, partial_usage=usage, provider=deployment.provider_name,
                        model=slot.model or deployment.model, status_code=getattr(interrupted, "status_code", None),
                        request_id=getattr(interrupted, "request_id", None),
                    )) from interrupted
                except BaseException:
                    deployment.inflight -= 1
                    deployment.circuit.release_probe(slot.generation)
                    await chain.finish_async(ctx)
                    raise
                finally:
                    closer = getattr(stream, "aclose", None)
                    if closer is not None:
                        await closer()
                deployment.inflight -= 1
                if not finished:  # the stream ended without a final chunk
                    attempt = run.succeeded(slot, ctx is None or ctx.sent)
                    await chain.finish_async(ctx, usage=usage)
                stats["successes"] += 1
                if "request_end" in events.kinds:
                    self._emit("request_end", request_id, operation, slot, success=True, usage=usage, tags=tags,
                               model=attempt.model, chunk_count=chunk_count, attempt=len(run.attempts),
                               latency=time.perf_counter() - started, cost=stream_cost,
                               data={"attempts": run.attempts})
                return
            if interrupted is not None:
                raise run.final_error(StreamInterruptedError(
                    "the stream failed after output reached the caller and no candidate could resume it: "
                    f"{interrupted}", partial_content=delivered, partial_usage=usage,
                )) from interrupted
            raise run.exhausted()
        except LLMError as exc:
            stats["failures"] += 1
            if "request_end" in events.kinds:
                self._emit("request_end", request_id, operation, success=False, error=exc, tags=tags,
                           data={"attempts": run.attempts},
                           chunk_count=chunk_count, attempt=len(run.attempts), latency=time.perf_counter() - started)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # Cancelled, or closed by the caller before its end: counted once, like a cancelled chat. A stream
            # closed after its final chunk was delivered is a success.
            stats["successes" if finished else "cancelled"] += 1
            if not finished and "request_end" in events.kinds:
                self._emit("request_end", request_id, operation, success=False, tags=tags, chunk_count=chunk_count,
                           attempt=len(run.attempts), latency=time.perf_counter() - started,
                           data={"attempts": run.attempts, "cancelled": True})
            raise
        finally:
            stats["inflight"] -= 1

    # -- batches --------------------------------------------------------------------------------------------

    async def batch_chat(
        self,
        requests: Iterable[Sequence[MessageInput] | Mapping[str, Any] | str],
        *,
        concurrency: int = 16,
        return_exceptions: bool = False,
        progress: Callable[[int, int | None], Any] | None = None,
        **common: Any,
    ) -> list[Any]:
        """Run many chats with at most ``concurrency`` in flight; results come back in input order.

        Each request is a message list (or string), or a dict with ``messages`` plus per-request arguments.
        With ``return_exceptions=True`` a failed request yields its exception in place; otherwise the first failure
        cancels the rest and is raised. ``progress(done, total)`` is called after each request (total is ``None``
        when ``requests`` is an iterator of unknown length). See :meth:`batch_chat_iter` to stream results.
        """
        from .batch import run_batch

        return await run_batch(self, requests, concurrency=concurrency, return_exceptions=return_exceptions,
                               progress=progress, common=common)

    def batch_chat_iter(
        self,
        requests: Iterable[Sequence[MessageInput] | Mapping[str, Any] | str],
        *,
        concurrency: int = 16,
        **common: Any,
    ) -> AsyncIterator[tuple[int, LLMResponse | BaseException]]:
        """Yield ``(index, response or exception)`` as requests finish; memory stays bounded by ``concurrency``."""
        from .batch import iter_batch

        return iter_batch(self, requests, concurrency=concurrency, common=common)

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

        if self._health_monitor is None:
            self._health_monitor = HealthMonitor(self, interval)
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

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def sync(self) -> SyncLLMManager:
        """A blocking facade that works in plain scripts and inside a running loop (e.g. Jupyter)."""
        from .sync import SyncLLMManager

        with self._lock:
            if self._sync is None:
                self._sync = SyncLLMManager(self)
            return self._sync

    async def cleanup(self) -> None:
        """Stop background work and close the clients of the running loop and the default middleware's stores.

        Pass your own ``middleware=`` to manage the lifetime of its stores yourself.
        """
        await self.stop_health_monitoring()
        for state in self.router.deployments.values():
            await state.close()
        if self._owned_middleware:
            from .middleware.defaults import close_middleware

            owned, self._owned_middleware = self._owned_middleware, []  # a second cleanup closes nothing twice
            await close_middleware(owned)

    async def start(self) -> None:
        """Read persisted state back (budget spend, the usage ledger), so status agrees with the store at once.

        ``async with`` / ``with`` call it; without it the first request does. A store that cannot be read now is
        retried by that first request, which then applies ``[state] fail_mode``.
        """
        from .state.base import StoreUnavailableError

        for middleware in self._chain.middleware:
            loader = getattr(middleware, "load_state", None)
            if loader is not None:
                try:
                    await loader()
                except StoreUnavailableError:
                    pass

    def close(self) -> None:
        """Blocking :meth:`cleanup`, for code without an event loop (``with LLMManager() as m:`` calls it).

        From inside a running loop, ``await manager.cleanup()`` (or ``async with``) instead.
        """
        self.sync.close()
        with self._lock:
            self._sync = None

    def __enter__(self) -> Self:
        self.sync.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cleanup()

    def __repr__(self) -> str:
        return f"LLMManager(deployments={list(self.router.deployments)!r})"


class _StreamOpener:
    """Opens a streamed attempt inside the ``around_stream`` hooks: the before hooks, then the provider's stream."""

    __slots__ = ("call", "ctx", "manager", "request", "slot")

    def __init__(self, manager: LLMManager, ctx: AttemptContext, slot: Slot, request: list[Any],
                 call: dict[str, Any]) -> None:
        self.manager, self.ctx, self.slot, self.request, self.call = manager, ctx, slot, request, call

    async def __call__(self) -> AsyncIterator[LLMResponseChunk]:
        ctx, manager = self.ctx, self.manager
        pending = manager._chain.before(ctx)
        if pending is not None:
            await pending
        deployment = self.slot.deployment
        instance = deployment.ready_provider() or await deployment.provider(manager.registry)
        ctx.sent = True
        stream = instance.chat_stream(self.request, callbacks=None, **self.call)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()


def _cache_options(kwargs: dict[str, Any]) -> tuple[bool | str | float | None, str | None]:
    """Take the per-call cache settings out of the provider's keywords (``cache=``, ``cache_namespace=``)."""
    directive = kwargs.pop("cache", None)
    namespace = kwargs.pop("cache_namespace", None)
    if not (directive is None or isinstance(directive, (bool, int, float)) or directive == "refresh"):
        raise ValidationError(f"cache={directive!r}: use True, False, 'refresh' or a time to live in seconds")
    if isinstance(directive, (int, float)) and not isinstance(directive, bool) and directive <= 0:
        raise ValidationError(f"cache={directive!r}: a time to live must be positive")
    return directive, None if namespace is None else str(namespace)


def _wants_layer(kwargs: dict[str, Any]) -> bool:
    """Whether a call asks for typed output, Python tools or the tool loop (a few dict lookups when it does not)."""
    response_format = kwargs.get("response_format")
    if (response_format is None or type(response_format) is dict and "properties" not in response_format) and (
            _LAYER_KEYS.isdisjoint(kwargs)):
        return False
    from .structured._run import wants_layer

    return wants_layer(kwargs)


def _invoke(instance: Any, operation: str, subject: Any, tools: Any, call: dict[str, Any]) -> Awaitable[Any]:
    method = getattr(instance, operation)
    return method(subject, **call) if tools is None else method(subject, tools, **call)  # type: ignore[no-any-return]


async def _bounded(work: Awaitable[Any], slot: Slot) -> Any:
    """``work`` within what is left of the slot's share of the request deadline."""
    assert slot.timeout is not None
    try:
        async with _timeout(max(slot.ends - time.monotonic(), 0.0)):
            return await work
    except asyncio.TimeoutError as exc:
        raise RequestTimeoutError("request deadline reached during the call", provider=slot.deployment.provider_name,
                           model=slot.model) from exc


def _as_list(messages: str | MessageInput | Sequence[MessageInput]) -> list[Any]:
    """The conversation as a list, without validating it here: providers map dicts and messages directly."""
    if type(messages) is list:
        return messages  # read, never changed, by the providers: no copy on the request path
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (Message, Mapping)):  # an ABC check: slow, so after the common case
        return [messages]
    return list(messages)


_global_manager: LLMManager | None = None
_global_lock = threading.Lock()


def get_llm_manager() -> LLMManager:
    """The process-wide manager, built from the default configuration on first use."""
    global _global_manager
    with _global_lock:
        if _global_manager is None:
            _global_manager = LLMManager()
        return _global_manager


def set_llm_manager(manager: LLMManager | None) -> None:
    """Replace (or, with ``None``, forget) the process-wide manager."""
    global _global_manager
    with _global_lock:
        _global_manager = manager
