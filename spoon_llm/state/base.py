"""The state-store contract: the few atomic operations that limits, budgets, cool-downs and the ledger need.

Every operation is atomic in every store (memory: one event loop; SQLite: one ``BEGIN IMMEDIATE`` transaction;
Redis: one Lua script), so several coroutines, processes or hosts sharing a store never over-admit.

Counters are integers: money is counted in nano-USD (see :data:`NANO`) so that sums are exact and Redis can add
them atomically. Keys are plain strings; each store adds its own prefix.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar, cast

from ..errors import StateStoreError

__all__ = ["NANO", "NOT_HELD", "StateStore", "StateStoreError", "StoreUnavailableError", "StoreClient",
           "SyncStateStore", "WindowLog", "from_nano", "sync_store", "to_nano"]

logger = logging.getLogger("spoon_llm.state")

_T = TypeVar("_T")
#: The value a reservation or acquisition reports when the store failed and ``fail_mode`` is ``"open"``: admitted,
#: but nothing is held in the store, so nothing may be given back or settled against it.
NOT_HELD = -1

#: The older name of :class:`~spoon_llm.errors.StateStoreError` (now an ``LLMError``), kept for existing code.
StoreUnavailableError = StateStoreError

#: Money is stored as an integer count of 1e-9 of the currency unit.
NANO = 1_000_000_000


def to_nano(amount: float, *, round_up: bool = False) -> int:
    """An amount of money as integer nano-units (``round_up`` for reservations, which must never fall short)."""
    scaled = amount * NANO
    whole = int(scaled)
    if round_up and whole < scaled:
        return whole + 1
    return round(scaled)


def from_nano(value: int) -> float:
    """Integer nano-units back to an amount of money."""
    return value / NANO


class StateStore(ABC):
    """Atomic counters, sliding windows, GCRA buckets, cool-downs and an append-only ledger.

    ``name`` says which kind of store this is (``memory``, ``sqlite``, ``redis``); ``shared`` whether other
    processes see the same state.
    """

    name: str = "store"
    shared: bool = False
    #: True when the store also offers synchronous ``*_now`` twins of its operations (the memory store): callers
    #: on the hot path use them to skip an await per operation.
    sync: bool = False
    #: What a failed operation does (``[state] fail_mode``): ``closed`` raises :class:`StateStoreError`; ``open``
    #: returns the permissive answer (admitted, nothing counted, no cool-down). Either way the decision is logged
    #: and counted in :attr:`fail_decisions` (shown by :meth:`status`). Ledger writes never fail a request: the
    #: stores that can fail buffer them and write them later.
    fail_mode: Literal["closed", "open"] = "closed"

    def decide(self, operation: str, exc: BaseException, permissive: _T) -> _T:
        """Apply :attr:`fail_mode` to ``operation``, which failed with ``exc``: raise, or return ``permissive``."""
        counts = self.__dict__.setdefault("fail_decisions", {"open": 0, "closed": 0})
        counts[self.fail_mode] += 1
        error = exc if isinstance(exc, StateStoreError) else StateStoreError(
            f"{self.name} store failed during {operation}: {type(exc).__name__}: {exc}", store=self.name,
            operation=operation)
        if self.fail_mode == "open":
            logger.warning("state store %s failed during %s; fail_mode=open: going on without it: %s", self.name,
                           operation, error.message)
            return permissive
        logger.warning("state store %s failed during %s; fail_mode=closed: refusing: %s", self.name, operation,
                       error.message)
        if error is exc:
            raise error
        raise error from exc

    # -- counters ---------------------------------------------------------------------------------------------

    @abstractmethod
    async def get(self, key: str) -> int:
        """The counter's value (0 when absent or expired)."""

    @abstractmethod
    async def add(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int]:
        """Add each delta to its counter in one atomic step; returns the new values in order."""

    async def add_eventually(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int] | None:
        """:meth:`add` for amounts that must not be lost (a budget reservation's release or settlement).

        Returns the new values, or ``None`` when the store could not be reached now and kept the deltas to apply
        them later, exactly once (see :meth:`flush`). Stores that cannot keep them (memory never fails; SQLite
        answers within its ``busy_timeout`` or fails) add at once, and a failure is decided by :attr:`fail_mode`.
        """
        return await self.add(deltas, ttl=ttl)

    @abstractmethod
    async def reserve(self, key: str, amount: int, limit: int, *, also: Mapping[str, int] | None = None,
                      ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` to ``key`` only if the result stays within ``limit``; returns ``(admitted, value)``.

        ``also`` are further counters to add to in the same step when admitted (e.g. a reservation count).
        """

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[int]:
        """Several counters at once (0 for absent ones)."""

    # -- windows and buckets ----------------------------------------------------------------------------------

    @abstractmethod
    async def window_acquire(self, key: str, entry: str, amount: int, limit: int,
                             window: float) -> tuple[bool, float]:
        """Sliding-window log: admit ``amount`` if the last ``window`` seconds hold at most ``limit`` with it.

        Returns ``(admitted, retry_after)``; ``retry_after`` is when enough old entries will have expired. An
        ``amount`` larger than ``limit`` is admitted only into an empty window (so it is never starved for ever).
        """

    @abstractmethod
    async def window_adjust(self, key: str, entry: str, delta: int) -> None:
        """Change an admitted entry's amount (settle a reservation; negative refunds). Expired entries: no-op."""

    @abstractmethod
    async def bucket_acquire(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA (leaky/token bucket): ``rate`` units per second, at most ``burst`` at once.

        Returns ``(admitted, retry_after)``.
        """

    @abstractmethod
    async def bucket_adjust(self, key: str, delta: float, rate: float) -> None:
        """Give back (negative) or take more (positive) units of an earlier acquisition."""

    # -- cool-downs -------------------------------------------------------------------------------------------

    @abstractmethod
    async def cooldown_set(self, key: str, seconds: float) -> None:
        """Block ``key`` for ``seconds`` from now (never shortening a longer existing cool-down)."""

    @abstractmethod
    async def cooldown_remaining(self, key: str) -> float:
        """Seconds left of ``key``'s cool-down (0 when none)."""

    def cooldown_known(self, key: str) -> float | None:
        """:meth:`cooldown_remaining` when the store can answer without awaiting, else ``None`` (ask it).

        A store that mirrors its cool-downs in-process answers while the mirror is fresh; others always say ``None``.
        """
        return None

    # -- ledger -----------------------------------------------------------------------------------------------

    @abstractmethod
    async def append(self, table: str, record: Mapping[str, Any]) -> None:
        """Append one JSON-serialisable record (with a ``ts`` field) to an append-only ledger."""

    def append_nowait(self, table: str, record: Mapping[str, Any]) -> Awaitable[None] | None:
        """:meth:`append` for the request path: ``None`` when the store took the record without waiting.

        The memory store appends at once; the SQLite store buffers the record and writes it with others shortly
        after (see :class:`~spoon_llm.state.sqlite.SQLiteStore`); other stores return the awaitable
        :meth:`append`. The record must not be changed afterwards.
        """
        return self.append(table, record)

    @abstractmethod
    async def records(self, table: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """The ledger's records, oldest first (only those with ``ts >= since`` when given)."""

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write now what the store keeps to write later (ledger records, deltas kept by :meth:`add_eventually`).

        Returns how many were written; what the store still cannot write stays kept. Stores that keep nothing: 0.
        """
        return 0

    async def close(self) -> None:  # noqa: B027 - a no-op is right for stores holding nothing
        """Release connections and threads; the store is unusable afterwards."""

    def status(self) -> dict[str, Any]:
        """What ``get_status()`` shows for this store (never credentials)."""
        return {"backend": self.name, "shared": self.shared, "fail_mode": self.fail_mode,
                "fail_decisions": dict(self.__dict__.get("fail_decisions", {"open": 0, "closed": 0}))}

    async def __aenter__(self) -> StateStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class WindowLog(Protocol):
    """One sliding-window log held in this process (see :meth:`SyncStateStore.window`)."""

    def acquire(self, now: float, entry: Hashable, amount: int, limit: int, window: float) -> tuple[bool, float]:
        """As :meth:`StateStore.window_acquire` at the moment ``now`` (a reading of the store's ``clock``)."""


class SyncStateStore(Protocol):
    """The synchronous ``*_now`` twins of a store with ``sync = True``: a store whose state lives in this process.

    Budgets and the rate limiter write each operation once, as a synchronous core over this protocol; their
    awaiting methods call that core when the store has it (no await per counter) and go through the
    :class:`StateStore` operations only for stores without it. Obtain one with :func:`sync_store`. Each ``*_now``
    method has the meaning of the :class:`StateStore` operation of the same name without ``_now``.

    The memory store implements it. SQLite does not: its transactions wait up to ``busy_timeout`` for another
    process's lock, which must not block the event loop; Redis is a network round trip.
    """

    #: The store's clock (monotonic seconds): what windows and cool-downs are measured against.
    clock: Callable[[], float]

    def live_counters(self) -> dict[str, int]:
        """The counters themselves, for keys that never get a TTL (reading and writing it is get/add)."""

    def window(self, key: str) -> WindowLog:
        """The sliding-window log of ``key`` (created empty), so a caller can keep it and skip the lookup."""

    def get_now(self, key: str) -> int:
        """As :meth:`StateStore.get`."""

    def add_now(self, key: str, delta: int, ttl: float | None = None) -> int:
        """One counter of :meth:`StateStore.add`; the new value."""

    def reserve_now(self, key: str, amount: int, limit: int, ttl: float | None = None) -> tuple[bool, int]:
        """As :meth:`StateStore.reserve` (one key)."""

    def window_acquire_now(self, key: str, entry: Any, amount: int, limit: int, window: float) -> tuple[bool, float]:
        """As :meth:`StateStore.window_acquire`."""

    def window_adjust_now(self, key: str, entry: Any, delta: int) -> None:
        """As :meth:`StateStore.window_adjust`."""

    def bucket_acquire_now(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """As :meth:`StateStore.bucket_acquire`."""

    def bucket_adjust_now(self, key: str, delta: float, rate: float) -> None:
        """As :meth:`StateStore.bucket_adjust`."""

    def cooldown_set_now(self, key: str, seconds: float) -> None:
        """As :meth:`StateStore.cooldown_set`."""

    def cooldown_remaining_now(self, key: str) -> float:
        """As :meth:`StateStore.cooldown_remaining`."""


def sync_store(store: StateStore) -> SyncStateStore | None:
    """``store`` as a :class:`SyncStateStore` when it declares ``sync = True``, else ``None``."""
    return cast(SyncStateStore, store) if store.sync else None


class StoreClient:
    """Something kept in a :attr:`store`, with the store's synchronous view in ``_now`` (``None`` without one).

    Budgets and the rate limiter read ``_now`` on the hot path: one attribute, kept right when the store is
    replaced.
    """

    _store: StateStore
    _now: SyncStateStore | None

    @property
    def store(self) -> StateStore:
        """The state store (assigning another one updates the synchronous view too)."""
        return self._store

    @store.setter
    def store(self, store: StateStore) -> None:
        self._store = store
        self._now = sync_store(store)
