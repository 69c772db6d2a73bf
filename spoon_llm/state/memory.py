"""The in-memory state store: the default, O(1) amortised per operation, private to one process.

Every operation has a synchronous ``*_now`` twin (``sync = True``): the budget guard and the rate limiter call
those directly, so the default configuration costs no await per counter.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from .base import StateStore

__all__ = ["MemoryStore"]


class _Window:
    """One sliding-window log: ``(ts, entry)`` oldest first, each entry's current amount, and their sum.

    Entries are immutable tuples and amounts plain ints, so a window holding a minute of traffic adds no objects
    for the garbage collector to track (a list per entry would, and at thousands of requests a second the
    collector's passes over them cost more than the limiter itself).
    """

    __slots__ = ("amounts", "entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, Hashable]] = deque()
        self.amounts: dict[Hashable, int] = {}
        self.total = 0


class MemoryStore(StateStore):
    """Everything in dicts of this process; operations never yield to the loop, so each one is atomic.

    ``clock`` (default ``time.monotonic``) is injectable so tests can move time; ``max_records`` bounds each
    ledger table (oldest records dropped first).
    """

    name = "memory"
    shared = False
    sync = True

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_records: int = 100_000) -> None:
        self.clock = clock
        self._counters: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._windows: dict[str, _Window] = {}
        self._tats: dict[str, float] = {}
        self._cooldowns: dict[str, float] = {}
        self._ledger: dict[str, deque[dict[str, Any]]] = {}
        self._max_records = max_records

    # -- counters ---------------------------------------------------------------------------------------------

    def get_now(self, key: str) -> int:
        """The counter's value (0 when absent or expired)."""
        if key in self._expires and self._expires[key] <= self.clock():
            self._counters.pop(key, None)
            del self._expires[key]
            return 0
        return self._counters.get(key, 0)

    def add_now(self, key: str, delta: int, ttl: float | None = None) -> int:
        """Add ``delta`` to one counter; returns the new value."""
        value = self.get_now(key) + delta
        self._counters[key] = value
        if ttl is not None:
            self._expires[key] = self.clock() + ttl
        return value

    def reserve_now(self, key: str, amount: int, limit: int, ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` only if the counter stays within ``limit``."""
        value = self.get_now(key)
        if value + amount > limit:
            return False, value
        value += amount
        self._counters[key] = value
        if ttl is not None:
            self._expires[key] = self.clock() + ttl
        return True, value

    async def get(self, key: str) -> int:
        """The counter's value (0 when absent or expired)."""
        return self.get_now(key)

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        """Several counters at once."""
        return [self.get_now(k) for k in keys]

    async def add(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int]:
        """Add each delta to its counter."""
        return [self.add_now(k, d, ttl) for k, d in deltas.items()]

    async def reserve(self, key: str, amount: int, limit: int, *, also: Mapping[str, int] | None = None,
                      ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` only if the counter stays within ``limit`` (and then each of ``also``)."""
        ok, value = self.reserve_now(key, amount, limit, ttl)
        if ok and also:
            for other, delta in also.items():
                self.add_now(other, delta, ttl)
        return ok, value

    # -- windows and buckets ----------------------------------------------------------------------------------

    def window_acquire_now(self, key: str, entry: Hashable, amount: int, limit: int,
                           window: float) -> tuple[bool, float]:
        """Sliding-window log; each entry is appended and expired once, so O(1) amortised."""
        now = self.clock()
        log = self._windows.get(key)
        if log is None:
            log = self._windows[key] = _Window()
        entries = log.entries
        amounts = log.amounts
        cutoff = now - window
        while entries and entries[0][0] <= cutoff:
            log.total -= amounts.pop(entries.popleft()[1], 0)
        if log.total + amount <= limit or (not entries and amount > limit):
            entries.append((now, entry))
            amounts[entry] = amount
            log.total += amount
            return True, 0.0
        need = log.total + amount - limit
        freed = 0
        for ts, old in entries:  # only walked on refusal, and only as far as needed
            freed += amounts.get(old, 0)
            if freed >= need:
                return False, max(ts + window - now, 0.0)
        return False, window

    def window_adjust_now(self, key: str, entry: Hashable, delta: int) -> None:
        """Settle an admitted entry to its real amount (entries already expired are left alone)."""
        log = self._windows.get(key)
        if log is None or entry not in log.amounts:
            return
        old = log.amounts[entry]
        new = max(old + delta, 0)
        log.total += new - old
        log.amounts[entry] = new

    def bucket_acquire_now(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA: one theoretical arrival time per key."""
        now = self.clock()
        interval = 1.0 / rate
        tat = max(self._tats.get(key, now), now)
        new_tat = tat + amount * interval
        allow_at = new_tat - burst * interval
        if allow_at > now and tat > now:
            return False, allow_at - now
        self._tats[key] = new_tat
        return True, 0.0

    def bucket_adjust_now(self, key: str, delta: float, rate: float) -> None:
        """Move the theoretical arrival time; refunds never bank credit beyond a full bucket."""
        if key in self._tats:
            self._tats[key] = max(self._tats[key] + delta / rate, self.clock())

    async def window_acquire(self, key: str, entry: str, amount: int, limit: int,
                             window: float) -> tuple[bool, float]:
        """Sliding-window log (see :meth:`window_acquire_now`)."""
        return self.window_acquire_now(key, entry, amount, limit, window)

    async def window_adjust(self, key: str, entry: str, delta: int) -> None:
        """Settle an admitted entry."""
        self.window_adjust_now(key, entry, delta)

    async def bucket_acquire(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA (see :meth:`bucket_acquire_now`)."""
        return self.bucket_acquire_now(key, amount, rate, burst)

    async def bucket_adjust(self, key: str, delta: float, rate: float) -> None:
        """Move the theoretical arrival time."""
        self.bucket_adjust_now(key, delta, rate)

    # -- cool-downs -------------------------------------------------------------------------------------------

    def cooldown_set_now(self, key: str, seconds: float) -> None:
        """Block ``key`` until now + ``seconds`` unless already blocked for longer."""
        until = self.clock() + seconds
        if until > self._cooldowns.get(key, 0.0):
            self._cooldowns[key] = until

    def cooldown_remaining_now(self, key: str) -> float:
        """Seconds left of the cool-down."""
        until = self._cooldowns.get(key)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._cooldowns[key]
            return 0.0
        return left

    async def cooldown_set(self, key: str, seconds: float) -> None:
        """Block ``key`` for ``seconds``."""
        self.cooldown_set_now(key, seconds)

    async def cooldown_remaining(self, key: str) -> float:
        """Seconds left of the cool-down."""
        return self.cooldown_remaining_now(key)

    # -- ledger -----------------------------------------------------------------------------------------------

    async def append(self, table: str, record: Mapping[str, Any]) -> None:
        """Append a record (kept in memory, bounded by ``max_records``)."""
        rows = self._ledger.get(table)
        if rows is None:
            rows = self._ledger[table] = deque(maxlen=self._max_records)
        rows.append(dict(record))

    async def records(self, table: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """The table's records, oldest first."""
        rows = self._ledger.get(table, ())
        return [dict(r) for r in rows if since is None or r.get("ts", 0.0) >= since]
