"""The middleware chain: runs every middleware's hooks around one attempt, in order, awaiting only what must wait.

Three kinds of hook, each left out of the request path when no middleware overrides it:

* ``before_attempt`` in list order, ``after_attempt`` in reverse order, for exactly the middleware whose
  ``before_attempt`` admitted the attempt (``ctx.passed`` counts them);
* ``around_attempt`` / ``around_stream`` wrap the whole attempt (the before hooks, the provider call and, for
  whole answers, the after hooks), outermost first; one may answer without calling what it wraps (a cache hit),
  and then no before or after hook runs and nothing is reserved. When the only wrapper offers its hook split in
  two plain halves (:meth:`~spoon_llm.middleware.base.Middleware.short_circuit`), the manager calls
  :attr:`MiddlewareChain.lookup` before the attempt and :meth:`MiddlewareChain.finish` calls the store after the
  after hooks: no coroutine or closure around the attempt.

Hooks may be plain functions returning ``None`` (nothing to wait for) or an awaitable: a chain of plain hooks
makes no coroutine at all, which is what keeps the manager's per-request cost low.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._background import finish_regardless
from .base import AttemptContext, Lookup, Middleware, Store

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..types import TokenUsage

__all__ = ["CallNext", "MiddlewareChain", "OpenStream"]

#: What an ``around_attempt`` hook calls to run the rest of the attempt.
CallNext = Callable[[], Awaitable[Any]]
#: What an ``around_stream`` hook calls to open the rest of the attempt's stream.
OpenStream = Callable[[], AsyncIterator[Any]]
_Hook = Callable[..., Awaitable[None] | None]
logger = logging.getLogger("spoon_llm.middleware")


def _overrides(middleware: Middleware, name: str) -> bool:
    return getattr(type(middleware), name, None) is not getattr(Middleware, name)


class MiddlewareChain:
    """Bound hooks of an ordered list of middleware, looked up once when the list changes."""

    __slots__ = ("arounds", "hooks", "lookup", "middleware", "store", "stream_arounds")

    def __init__(self, middleware: Sequence[Middleware] = ()) -> None:
        self.middleware: list[Middleware] = list(middleware)
        self.hooks: list[tuple[_Hook | None, _Hook | None]] = []
        self.arounds: list[Callable[[AttemptContext, CallNext], Awaitable[Any]]] = []
        self.stream_arounds: list[Callable[[AttemptContext, OpenStream], AsyncIterator[Any]]] = []
        #: The halves of the only wrapper, when it offers them: called instead of :attr:`arounds`.
        self.lookup: Lookup | None = None
        self.store: Store | None = None
        self._rebuild()

    def append(self, middleware: Middleware) -> None:
        """Add ``middleware`` after those already present."""
        self.middleware.append(middleware)
        self._rebuild()

    def _rebuild(self) -> None:
        self.hooks = [
            (m.before_attempt if _overrides(m, "before_attempt") else None,
             m.after_attempt if _overrides(m, "after_attempt") else None)
            for m in self.middleware
        ]
        arounds: list[Callable[[AttemptContext, CallNext], Awaitable[Any]]] = []
        split: list[tuple[Lookup, Store] | None] = []
        for m in self.middleware:
            halves = m.short_circuit() if _overrides(m, "short_circuit") else None
            if _overrides(m, "around_attempt"):
                arounds.append(m.around_attempt)
            elif halves is not None:
                arounds.append(_halves_around(*halves))
            else:
                continue
            split.append(halves)
        self.arounds = arounds
        self.lookup, self.store = split[0] if len(split) == 1 and split[0] is not None else (None, None)
        self.stream_arounds = [m.around_stream for m in self.middleware if _overrides(m, "around_stream")]

    def __len__(self) -> int:
        return len(self.hooks)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    # -- before and after ---------------------------------------------------------------------------------

    def before(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Run the ``before_attempt`` hooks from ``ctx.passed`` on, counting each that admits the attempt.

        Returns ``None`` when every hook finished synchronously (no coroutine is made at all), else an awaitable
        that waits for the hook that needs it and runs the rest.
        """
        hooks = self.hooks
        count = len(hooks)
        while ctx.passed < count:
            before = hooks[ctx.passed][0]
            if before is not None:
                pending = before(ctx)
                if pending is not None:
                    return self._await_before(ctx, pending)
            ctx.passed += 1
        return None

    async def _await_before(self, ctx: AttemptContext, pending: Awaitable[None]) -> None:
        await pending
        ctx.passed += 1
        rest = self.before(ctx)
        if rest is not None:
            await rest

    def after(self, ctx: AttemptContext, start: int, response: Any = None, usage: TokenUsage | None = None,
              error: LLMError | None = None) -> Awaitable[None] | None:
        """Run the ``after_attempt`` hooks of the first ``start`` middleware, last first (``None``: all done)."""
        hooks = self.hooks
        index = start
        while index > 0:
            index -= 1
            after = hooks[index][1]
            if after is not None:
                try:
                    pending = after(ctx, response=response, usage=usage, error=error)
                except Exception as exc:  # the hooks after it still run (they release what they hold)
                    return self._raise_after_rest(exc, ctx, index, response, usage, error)
                if pending is not None:
                    return self._await_after(ctx, index, pending, response, usage, error)
        return None

    async def _await_after(self, ctx: AttemptContext, index: int, pending: Awaitable[None], response: Any,
                           usage: TokenUsage | None, error: LLMError | None) -> None:
        try:
            await pending
        except Exception:
            await self._rest_of_after(ctx, index, response, usage, error)
            raise
        rest = self.after(ctx, index, response, usage, error)
        if rest is not None:
            await rest

    async def _raise_after_rest(self, exc: Exception, ctx: AttemptContext, index: int, response: Any,
                                usage: TokenUsage | None, error: LLMError | None) -> None:
        await self._rest_of_after(ctx, index, response, usage, error)
        raise exc

    async def _rest_of_after(self, ctx: AttemptContext, index: int, response: Any, usage: TokenUsage | None,
                             error: LLMError | None) -> None:
        """The ``after_attempt`` hooks left once one raised: each runs, and what they raise is only logged."""
        hooks = self.hooks
        while index > 0:
            index -= 1
            after = hooks[index][1]
            if after is None:
                continue
            try:
                pending = after(ctx, response=response, usage=usage, error=error)
                if pending is not None:
                    await pending
            except Exception as exc:
                middleware = self.middleware[index]
                logger.warning("middleware %s failed in after_attempt too (%s); the first failure stands",
                               getattr(middleware, "name", type(middleware).__name__), type(exc).__name__)

    def finish(self, ctx: AttemptContext | None, response: Any = None, usage: TokenUsage | None = None,
               error: LLMError | None = None) -> Awaitable[None] | None:
        """The after hooks of every middleware that admitted the attempt, once: afterwards none is left to run.

        Then, for an answer the chain's :attr:`lookup` let through (``ctx.ticket`` set), the wrapper's store.
        """
        if ctx is None or not ctx.passed:
            return None
        passed, ctx.passed = ctx.passed, 0
        pending = self.after(ctx, passed, response, usage, error)
        if ctx.ticket is not None and self.store is not None and error is None and response is not None:
            if pending is None:
                _store_regardless(self.store, ctx, response)
            else:
                pending = self._store_after(pending, ctx, response)
        # Settling and releasing must finish even when the caller is cancelled while it waits for them: they
        # run on, and are only ever started once (ctx.passed is already zero).
        return None if pending is None else finish_regardless(pending)

    async def _store_after(self, pending: Awaitable[None], ctx: AttemptContext, response: Any) -> None:
        await pending
        assert self.store is not None
        _store_regardless(self.store, ctx, response)

    async def finish_async(self, ctx: AttemptContext | None, response: Any = None,
                           usage: TokenUsage | None = None, error: LLMError | None = None) -> None:
        """:meth:`finish`, awaited (for the paths that are coroutines anyway)."""
        pending = self.finish(ctx, response, usage, error)
        if pending is not None:
            await pending

    # -- around ---------------------------------------------------------------------------------------------

    def wrap(self, ctx: AttemptContext, call: CallNext) -> Awaitable[Any]:
        """``call`` wrapped by every ``around_attempt`` hook, the first middleware outermost."""
        arounds = self.arounds
        if len(arounds) == 1:  # the common chain (the cache alone): no binding closure per attempt
            return arounds[0](ctx, call)
        for around in reversed(arounds):
            call = _bind(around, ctx, call)
        return call()

    def wrap_stream(self, ctx: AttemptContext, open_stream: OpenStream) -> AsyncIterator[Any]:
        """``open_stream`` wrapped by every ``around_stream`` hook, the first middleware outermost."""
        for around in reversed(self.stream_arounds):
            open_stream = _bind_stream(around, ctx, open_stream)
        return open_stream()


def _halves_around(lookup: Lookup, store: Store) -> Callable[[AttemptContext, CallNext], Awaitable[Any]]:
    """An ``around_attempt`` hook made of a middleware's two halves (for a chain with other wrappers)."""

    async def around(ctx: AttemptContext, call_next: CallNext) -> Any:
        ctx.ticket = None  # an outer wrapper's ticket is not ours (it keeps its own below)
        hit = lookup(ctx)
        if hit is not None:
            return hit
        ticket = ctx.ticket
        response = await call_next()
        if ticket is not None:
            ctx.ticket = ticket
            _store_regardless(store, ctx, response)
        return response

    return around


def _store_regardless(store: Store, ctx: AttemptContext, response: Any) -> None:
    """``store(ctx, response)``; what it raises is logged and dropped: the answer is served all the same."""
    try:
        store(ctx, response)
    except Exception as exc:
        logger.warning("%s failed (%s): the answer is served, not stored", getattr(store, "__qualname__", "store"),
                       type(exc).__name__)


def _bind(around: Callable[[AttemptContext, CallNext], Awaitable[Any]], ctx: AttemptContext,
          call: CallNext) -> CallNext:
    return lambda: around(ctx, call)


def _bind_stream(around: Callable[[AttemptContext, OpenStream], AsyncIterator[Any]], ctx: AttemptContext,
                 open_stream: OpenStream) -> OpenStream:
    return lambda: around(ctx, open_stream)
