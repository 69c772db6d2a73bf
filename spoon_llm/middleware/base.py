"""The middleware contract: hooks before and after every attempt, the same for streamed and whole answers."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..routing.deployment import DeploymentState
    from ..types import Message, TokenUsage

__all__ = ["AttemptContext", "Middleware"]


@dataclass(slots=True)
class AttemptContext:
    """What middleware knows about one attempt.

    ``state`` is scratch space for middleware to carry data from ``before_attempt`` to ``after_attempt`` (e.g. a
    budget reservation), keyed by middleware name.
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
    state: dict[str, Any] = field(default_factory=dict)
    #: How many middleware admitted the attempt so far (their ``before_attempt`` returned); the manager runs the
    #: ``after_attempt`` hooks of exactly those.
    passed: int = 0
    _messages: list[Message] | None = None

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

    Hooks a subclass does not override are never called.
    """

    name: str = "middleware"

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

    def status(self) -> dict[str, Any]:
        """What ``manager.get_status()`` shows for this middleware."""
        return {}
