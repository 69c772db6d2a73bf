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
    from .types import TokenUsage

__all__ = ["ALL_KINDS", "Event", "EventBus", "EventKind", "Observer", "new_request_id"]

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
                    logger.exception("observer %r failed on %s", handler, kind)
