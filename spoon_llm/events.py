"""Request lifecycle events: one stream that logging, metrics and tracing consume independently.

The manager emits an :class:`Event` at each step of a request; observers subscribe with
``manager.add_observer(observer)``. With no observer the manager builds no event at all, so observability costs
nothing when it is off.

Kinds, in the order a request produces them:

* ``request_start``: the call arrived (operation, route).
* ``attempt_start`` / ``attempt_end``: one try against one deployment (``attempt_end`` carries the error, if any,
  and the latency); ``retry`` / ``fallback`` say what the manager does next and why.
* ``first_token``: a stream's first chunk reached the caller (time to first token in ``latency``).
* ``request_end``: the request finished (``success``, ``response`` or ``error``, total ``latency``,
  ``chunk_count`` for streams).
* ``circuit_change``: a deployment's circuit changed state (``data`` has ``old`` and ``new``).
* ``budget_alert``: a budget crossed an alert threshold (``data`` has the details).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

if TYPE_CHECKING:
    from .errors import LLMError
    from .types import Attempt, TokenUsage

__all__ = ["ALL_KINDS", "Event", "EventBus", "EventKind", "Observer", "Target", "new_request_id"]

EventKind = Literal[
    "request_start", "attempt_start", "attempt_end", "retry", "fallback", "first_token", "request_end",
    "circuit_change", "budget_alert",
]

logger = logging.getLogger("spoon_llm.events")
_ids = itertools.count(1)


def new_request_id() -> str:
    """A process-unique id for one manager request (cheap: a counter, not a UUID)."""
    return f"req-{next(_ids)}"


@dataclass(slots=True)
class Event:
    """One step of one request. Fields that do not apply to a kind stay ``None``."""

    kind: EventKind
    request_id: str
    operation: str = ""
    provider: str | None = None
    model: str | None = None
    deployment: str | None = None
    key_alias: str | None = None
    attempt: int = 0
    success: bool | None = None
    error: LLMError | None = None
    latency: float | None = None
    waited: float | None = None
    usage: TokenUsage | None = None
    cost: float | None = None
    chunk_count: int | None = None
    response: Any = None
    tags: dict[str, str] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    # One constructor per kind the request path emits. Each builds with a positional literal in field order (no
    # keyword matching, no default factories): they run on every observed request.

    @classmethod
    def request_start(cls, request_id: str, operation: str, tags: dict[str, str] | None, route: str) -> Event:
        """The call arrived; ``data["route"]`` names the route it resolved to."""
        return cls("request_start", request_id, operation, None, None, None, None, 0, None, None, None, None,
                   None, None, None, None, tags, {"route": route}, time.time())

    @classmethod
    def attempt_start(cls, request_id: str, operation: str, target: Target, model: str | None, attempt: int,
                      waited: float) -> Event:
        """Attempt number ``attempt`` on ``target`` begins, after ``waited`` seconds of backoff."""
        return cls("attempt_start", request_id, operation, target.provider_name, model or target.model, target.name,
                   target.key_alias, attempt, None, None, None, waited, None, None, None, None, None, {}, time.time())

    @classmethod
    def attempt_ok(cls, request_id: str, operation: str, target: Target, attempt: Attempt, number: int,
                   usage: TokenUsage | None, sent: bool = True) -> Event:
        """Attempt number ``number`` succeeded (``attempt`` is its trace entry: the model that answered, latency).

        ``sent=False``: middleware answered it (a cache hit) without calling the provider; ``data["short_circuit"]``
        says so, so that it is not counted as a call to the provider.
        """
        return cls("attempt_end", request_id, operation, target.provider_name, attempt.model, target.name,
                   target.key_alias, number, True, None, attempt.latency, None, usage, None, None, None, None,
                   {} if sent else {"short_circuit": True}, time.time())

    @classmethod
    def attempt_failed(cls, request_id: str, operation: str, target: Target, model: str | None, number: int,
                       error: LLMError, latency: float) -> Event:
        """Attempt number ``number`` failed with ``error``."""
        return cls("attempt_end", request_id, operation, target.provider_name, model or target.model, target.name,
                   target.key_alias, number, False, error, latency, None, None, None, None, None, None, {},
                   time.time())

    @classmethod
    def next_step(cls, kind: Literal["retry", "fallback"], request_id: str, operation: str, target: Target,
                  model: str | None, attempts: int, error: LLMError) -> Event:
        """After a failure on ``target``: ``retry`` it, or ``fallback`` to the next candidate."""
        return cls(kind, request_id, operation, target.provider_name, model or target.model, target.name,
                   target.key_alias, attempts, None, error, None, None, None, None, None, None, None,
                   {"reason": type(error).__name__}, time.time())

    @classmethod
    def first_token(cls, request_id: str, operation: str, target: Target, model: str | None,
                    latency: float) -> Event:
        """A stream's first chunk reached the caller, ``latency`` seconds after the request began."""
        return cls("first_token", request_id, operation, target.provider_name, model, target.name, target.key_alias,
                   0, None, None, latency, None, None, None, None, None, None, {}, time.time())

    @classmethod
    def request_ok(cls, request_id: str, operation: str, attempts: list[Attempt], latency: float,
                   usage: TokenUsage | None, cost: float | None, response: Any, tags: dict[str, str] | None,
                   chunk_count: int | None = None) -> Event:
        """The request succeeded; the last of ``attempts`` answered (``response`` is ``None`` for streams)."""
        last = attempts[-1]
        return cls("request_end", request_id, operation, last.provider, last.model, last.deployment, last.key_alias,
                   len(attempts), True, None, latency, None, usage, cost, chunk_count, response, tags,
                   {"attempts": attempts}, time.time())

    @classmethod
    def request_failed(cls, request_id: str, operation: str, attempts: list[Attempt], latency: float,
                       error: LLMError | None, tags: dict[str, str] | None, chunk_count: int | None = None) -> Event:
        """The request failed with ``error``, or (``error=None``) was cancelled: ``data["cancelled"]`` is true."""
        data: dict[str, Any] = {"attempts": attempts}
        if error is None:
            data["cancelled"] = True
        return cls("request_end", request_id, operation, None, None, None, None, len(attempts), False, error,
                   latency, None, None, None, chunk_count, None, tags, data, time.time())

    @classmethod
    def circuit_change(cls, deployment: str, old: str, new: str) -> Event:
        """``deployment``'s circuit went from ``old`` to ``new`` (state names)."""
        return cls("circuit_change", "", "", None, None, deployment, None, 0, None, None, None, None, None, None,
                   None, None, None, {"old": old, "new": new}, time.time())


class Target(Protocol):
    """What an event names of the deployment an attempt went to (a ``DeploymentState`` has these)."""

    @property
    def provider_name(self) -> str:
        """The provider's configured name."""

    @property
    def model(self) -> str | None:
        """The deployment's model (``None``: the provider's default)."""

    @property
    def name(self) -> str:
        """The deployment's name."""

    @property
    def key_alias(self) -> str | None:
        """A label for the API key (never the key)."""


@runtime_checkable
class Observer(Protocol):
    """Anything with ``on_event(event)``; called synchronously, so keep it quick (queue heavy work)."""

    def on_event(self, event: Event) -> None:
        """Handle one event."""


ALL_KINDS: frozenset[str] = frozenset(get_args(EventKind))


class EventBus:
    """Delivers events to observers; an observer that raises is logged and never breaks the request.

    An observer may declare ``event_kinds`` (a set of kinds); the manager then builds only the events some
    observer wants, checked with ``kind in bus.kinds``. Observers without it receive every kind.
    """

    def __init__(self) -> None:
        self.observers: list[Observer | Callable[[Event], Any]] = []
        self._handlers: list[tuple[Callable[[Event], Any], frozenset[str]]] = []
        #: The union of the kinds the observers want (empty when there is none).
        self.kinds: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def add(self, observer: Observer | Callable[[Event], Any]) -> None:
        """Subscribe an observer (an object with ``on_event`` or a plain callable)."""
        handler = observer.on_event if isinstance(observer, Observer) else observer
        wanted = getattr(observer, "event_kinds", None)
        self.observers.append(observer)
        self._handlers.append((handler, frozenset(wanted) if wanted is not None else ALL_KINDS))
        self._refresh()

    def remove(self, observer: Observer | Callable[[Event], Any]) -> None:
        """Unsubscribe an observer; unknown ones are ignored."""
        if observer in self.observers:
            index = self.observers.index(observer)
            del self.observers[index]
            del self._handlers[index]
            self._refresh()

    def _refresh(self) -> None:
        self.kinds = frozenset().union(*(kinds for _, kinds in self._handlers))

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every observer that wants its kind, in subscription order."""
        kind = event.kind
        for handler, kinds in self._handlers:
            if kind in kinds:
                try:
                    handler(event)
                except Exception:
                    try:
                        logger.exception("observer %r failed on %s", handler, kind)
                    except Exception:  # a log handler that raises too: the request goes on all the same
                        pass
