"""``LLMManager``: the public facade applications call.

It resolves a call to deployments (provider, key, model), tries them with retries, circuit breaking, load
balancing and fallback under one deadline, and returns the normalised answer with the trace of attempts.

Example::

    async with LLMManager() as manager:
        response = await manager.chat([{"role": "user", "content": "Hi"}], model="sonnet")
        print(response.content, response.fallback_path)
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config.manager import ConfigurationManager
from .control import RunTimeControl
from .events import Event, EventBus
from .interface import StreamCallback
from .middleware.base import Middleware
from .middleware.chain import MiddlewareChain
from .registry import LLMProviderRegistry, get_global_registry
from .request.core import RequestCore, as_list
from .request.stream import StreamRequest
from .routing.balancer import Balancer, Strategy
from .routing.circuit import CircuitBreaker, CircuitState
from .routing.policy import ErrorPolicy
from .routing.router import Router
from .types import EmbeddingResponse, LLMResponse, LLMResponseChunk, MessageInput, ToolSpec

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from ._pooled import TextClient
    from .health import HealthMonitor
    from .monitoring.metrics import MetricsCollector
    from .sync import SyncLLMManager

__all__ = ["LLMManager", "get_llm_manager", "set_llm_manager"]

#: Keywords that may need the layer above one call (spoon_llm.structured._run): Python tools, re-asks, the tool loop.
_LAYER_KEYS = frozenset({"tools", "output_retries", "run_tools", "max_turns", "tool_errors"})
#: The keyword parameters of :meth:`LLMManager.chat` besides its keywords for the provider.
_CHAT_PARAMETERS = frozenset({"provider", "model", "fallback", "deadline"})

#: Seconds one request may take in all (limiter waits, set-up, retries, backoffs, fallbacks) when neither the call
#: (``deadline=``) nor the configuration (``request_timeout``) bounds it.
DEFAULT_REQUEST_TIMEOUT = 600.0

class LLMManager(RequestCore, RunTimeControl):
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
                self.events.emit(Event.circuit_change(deployment, old.value, new.value))

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

    # -- requests -------------------------------------------------------------------------------------------

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
        conversation = as_list(messages)
        result: LLMResponse = await self._execute("chat", conversation, kwargs, provider, model, fallback,
                                                  deadline, conversation)
        return result

    def _chat_call(self, messages: list[Any], model: str | None, deadline: float | None,
                   kwargs: dict[str, Any]) -> Awaitable[LLMResponse]:
        """``chat(messages, model=model, deadline=deadline, **kwargs)``, handing ``kwargs`` over (it is consumed).

        The request coroutine itself when the call asks for nothing but a plain answer: the gateway's JSON path
        does without :meth:`chat`'s coroutine around it, which every wake-up of the request would pass through.
        """
        if _CHAT_PARAMETERS.isdisjoint(kwargs) and not (kwargs and _wants_layer(kwargs)):
            answer: Awaitable[LLMResponse] = self._execute("chat", messages, kwargs, None, model, None, deadline,
                                                           messages)
            return answer
        return self.chat(messages, model=model, deadline=deadline, **kwargs)

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
        conversation = as_list(messages)
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

    def chat_stream(
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

            return layered_stream(self, messages, {**kwargs, "provider": provider, "model": model,
                                                   "fallback": fallback, "deadline": deadline,
                                                   "callbacks": callbacks, "resume_on_interrupt": resume_on_interrupt})
        return StreamRequest(self, messages, provider, model, fallback, deadline, callbacks, resume_on_interrupt,
                             kwargs)

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

    def get_client(self) -> TextClient:
        """A client whose answers are plain text (``await client.chat("Hello")``), as the older pooled module's."""
        from ._pooled import TextClient

        return TextClient(self)

    def __await__(self) -> Generator[Any, None, LLMManager]:
        """``await get_llm_manager()``, as the older pooled module spelt it: the manager itself."""
        return _itself(self).__await__()


async def _itself(manager: LLMManager) -> LLMManager:
    return manager


def _wants_layer(kwargs: dict[str, Any]) -> bool:
    """Whether a call asks for typed output, Python tools or the tool loop (a few dict lookups when it does not)."""
    response_format = kwargs.get("response_format")
    # Only a dict in OpenAI's own shape is surely not typed; any other (a bare JSON schema, whatever its root) is
    # decided by the layer.
    if (response_format is None or type(response_format) is dict and response_format.get("type") in (
            "json_object", "json_schema", "text")) and _LAYER_KEYS.isdisjoint(kwargs):
        return False
    from .structured._run import wants_layer

    return wants_layer(kwargs)


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
