"""The middleware contract: hooks before, after and around every attempt, the same for streamed and whole answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

if TYPE_CHECKING:
    from ..costs.budgets import Reservation
    from ..errors import LLMError
    from ..pricing._rates import Rates
    from ..ratelimit.limiter import Permit
    from ..routing.deployment import DeploymentState
    from ..types import CostInfo, Message, TokenUsage

__all__ = ["AttemptContext", "Lookup", "Middleware", "Store"]


@dataclass(slots=True)
class AttemptContext:
    """What middleware knows about one attempt.

    The built-in middleware hand data to each other and to their own ``after_attempt`` through the typed slots
    below (the token estimate, the resolved rates, the budget reservation, the rate-limit permit, the priced
    cost). ``state`` is scratch space for other middleware, keyed by their name; it is made on first use.
    """

    request_id: str
    operation: str
    deployment: DeploymentState
    model: str | None
    #: The conversation as the caller gave it (dicts and/or messages); see :attr:`messages`.
    raw_messages: Sequence[Any] | None
    kwargs: dict[str, Any]
    tags: dict[str, str] | None = None
    attempt: int = 0
    #: How many middleware admitted the attempt so far (their ``before_attempt`` returned); the manager runs the
    #: ``after_attempt`` hooks of exactly those.
    passed: int = 0
    #: ``True`` once the request is handed to the provider; an attempt answered by an ``around`` hook (a cache
    #: hit) never is, and then it counts neither for the deployment's health nor its latency.
    sent: bool = False
    #: ``(estimated input tokens, most output tokens)``: see :func:`spoon_llm.tokens.request_tokens`.
    tokens: tuple[int, int] | None = None
    #: ``(model, rates)`` resolved by the budget guard, reused by cost accounting for the same model.
    rates: tuple[str | None, Rates | None] | None = None
    #: The budget held for this attempt until it is settled.
    reservation: Reservation | None = None
    #: The rate-limit permit held for this attempt until it is settled.
    permit: Permit | None = None
    #: The attempt's cost, priced once (by the first middleware that needs it).
    cost: CostInfo | None = None
    #: The tools of a ``chat_with_tools`` call (other calls carry theirs in ``kwargs``).
    tools: Any = None
    #: What ``embed`` embeds or ``completion`` completes (chats carry their conversation in ``raw_messages``).
    subject: Any = None
    #: The call's ``cache=`` directive (``None``: the configured policy; ``False``, ``"refresh"`` or a TTL).
    cache: bool | str | float | None = None
    #: The call's ``cache_namespace=``: cache entries of other namespaces are never seen.
    cache_namespace: str | None = None
    #: What a short-circuiting middleware's lookup left for its store (see :meth:`Middleware.short_circuit`);
    #: ``None``: nothing to store.
    ticket: Any = None
    _state: dict[str, Any] | None = None
    _messages: list[Message] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """Scratch space for third-party middleware (made on first use)."""
        if self._state is None:
            self._state = {}
        return self._state

    @property
    def messages(self) -> list[Message] | None:
        """The conversation as :class:`Message` objects, converted on first use (most attempts never need it)."""
        if self._messages is None and self.raw_messages is not None:
            from ..types import to_messages

            self._messages = to_messages(self.raw_messages)
        return self._messages

    @property
    def provider(self) -> str:
        """The provider section of the deployment."""
        return self.deployment.provider_name

    @property
    def effective_model(self) -> str | None:
        """The model asked for: the call's, else the deployment's."""
        return self.model or self.deployment.model


#: The first half of a split ``around_attempt``: an answer that ends the attempt, or ``None`` to run it.
Lookup: TypeAlias = Callable[[AttemptContext], Any]
#: The second half: called with the attempt's answer (see :meth:`Middleware.short_circuit`).
Store: TypeAlias = Callable[[AttemptContext, Any], None]


class Middleware:
    """Base class: override the hooks you need.

    ``before_attempt`` runs before a request leaves the process and may wait (async) or refuse by raising an
    :class:`~spoon_llm.errors.LLMError`: a ``RateLimitError`` makes the manager try another deployment, a
    ``BudgetExceededError`` stops the request. ``after_attempt`` runs once per attempt that passed
    ``before_attempt``, with the usage of the answer (for streams, the usage of the final chunk) or the error.
    Middleware runs in list order before, and in reverse order after.

    A hook may be a coroutine function (``async def``) or a plain function that returns ``None`` when it has
    nothing to wait for, or an awaitable when it does: the manager awaits only what is returned. Plain hooks
    keep the request path free of an extra coroutine per hook, which matters at thousands of requests a second::

        class CountRequests(Middleware):
            name = "count"

            def before_attempt(self, ctx):
                self.count += 1          # nothing to await: return None

            async def after_attempt(self, ctx, *, response=None, usage=None, error=None):
                await asyncio.sleep(0)   # coroutine hooks work too

    ``around_attempt(ctx, call_next)`` and ``around_stream(ctx, open_stream)`` wrap a whole attempt: the other
    middleware's before hooks, the provider call and (for whole answers) the after hooks. A wrapper may answer
    without calling what it wraps — a response cache does — and then nothing is reserved or charged and the
    deployment's health is untouched::

        class Cache(Middleware):
            async def around_attempt(self, ctx, call_next):
                hit = self.store.get(key(ctx))
                if hit is not None:
                    return hit
                response = await call_next()
                self.store.put(key(ctx), response)
                return response

    A wrapper that never waits (an in-memory cache) may also offer its ``around_attempt`` split in two plain
    halves, :meth:`short_circuit`: the manager then calls those around the attempt instead, and makes no coroutine
    or closure for the wrapper at all.

    Hooks a subclass does not override are never called, and cost nothing.
    """

    name: str = "middleware"
    #: Where a middleware given to ``LLMManager(middleware=[...])`` joins the configured chain (cache, shared
    #: circuits, budget guard, rate limiter, cost accounting): ``"inner"`` (the default) after it, so it sees only
    #: attempts that budgets and limits admitted; ``"outer"`` before it, so it sees every attempt (cache hits too).
    placement: ClassVar[Literal["inner", "outer"]] = "inner"

    def before_attempt(self, ctx: AttemptContext) -> Awaitable[None] | None:
        """Called before the provider is called; return ``None`` or an awaitable to wait for."""
        return None

    def after_attempt(
        self,
        ctx: AttemptContext,
        *,
        response: Any = None,
        usage: TokenUsage | None = None,
        error: LLMError | None = None,
    ) -> Awaitable[None] | None:
        """Called after the attempt ended (``response`` or ``error`` is set; ``usage`` when known)."""
        return None

    def around_attempt(self, ctx: AttemptContext, call_next: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """Wrap a whole (not streamed) attempt; return ``call_next()`` or an answer of your own."""
        return call_next()

    def around_stream(self, ctx: AttemptContext, open_stream: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """Wrap a streamed attempt; return ``open_stream()`` (or a wrapper of it) or a stream of your own."""
        return open_stream()

    def short_circuit(self) -> tuple[Lookup, Store] | None:
        """``around_attempt`` as two plain functions ``(lookup, store)``, or ``None`` (the default: it has none).

        ``lookup(ctx)`` runs before the attempt (before any before hook) and returns an answer, which ends the
        attempt exactly as ``around_attempt`` returning it would, or ``None`` to run the attempt. To see the answer,
        it sets ``ctx.ticket`` (to anything but ``None``): ``store(ctx, response)`` is then called once the attempt
        succeeded and its after hooks ran, never for a failed or cancelled attempt. Neither may wait; ``store``
        should not raise (what it raises is logged and dropped: the answer is served all the same).

        When this middleware is the chain's only wrapper the manager calls these halves and not
        ``around_attempt``; otherwise it nests ``around_attempt`` as usual. A middleware that overrides only this
        method gets an ``around_attempt`` made of the halves; one that overrides both keeps them equivalent.
        Whether a middleware offers halves is asked once, when the chain is built.
        """
        return None

    def status(self) -> dict[str, Any]:
        """What ``manager.get_status()`` shows for this middleware."""
        return {}
