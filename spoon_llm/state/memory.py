"""The in-memory state store: the default, O(1) amortised per operation, private to one process.

It implements :class:`~spoon_llm.state.base.SyncStateStore` (``sync = True``): every operation has a synchronous
``*_now`` twin, which the budgets' and the rate limiter's synchronous cores call, so the default configuration
costs no await per counter.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from .base import StateStore

__all__ = ["MemoryStore"]


class _Window:
    """One sliding-window log: admission times and entry ids oldest first, each entry's amount, and their sum.

    Times, ids and amounts are plain floats and ints in two deques and a dict, so a window holding a minute of
    traffic allocates no object the garbage collector tracks: a tuple per entry would be tracked until the
    collector's next pass, and at thousands of requests a second those passes (and the full collections the
    survivors trigger) cost more than the limiter itself.
    """

    __slots__ = ("amounts", "ids", "times", "total")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.ids: deque[Hashable] = deque()
        self.amounts: dict[Hashable, int] = {}
        self.total = 0

    def acquire(self, now: float, entry: Hashable, amount: int, limit: int, window: float) -> tuple[bool, float]:
        """Admit ``amount`` at ``now`` if the last ``window`` seconds hold at most ``limit`` with it.

        Each entry is appended and expired once, so O(1) amortised.
        """
        times = self.times
        amounts = self.amounts
        cutoff = now - window
        if times and times[0] <= cutoff:
            ids = self.ids
            while times and times[0] <= cutoff:
                times.popleft()
                self.total -= amounts.pop(ids.popleft(), 0)
        total = self.total
        if total + amount <= limit or (not times and amount > limit):
            times.append(now)
            self.ids.append(entry)
            amounts[entry] = amount
            self.total = total + amount
            return True, 0.0
        need = total + amount - limit
        freed = 0
        for ts, old in zip(times, self.ids, strict=True):  # only walked on refusal, and only as far as needed
            freed += amounts.get(old, 0)
            if freed >= need:
                return False, max(ts + window - now, 0.0)
        return False, window


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

    def live_counters(self) -> dict[str, int]:
        """The counters themselves, for synchronous callers updating keys they never give a TTL.

        For such keys reading and writing this dict is exactly what :meth:`get_now` and :meth:`add_now` do, minus
        a call per counter (the budget manager's hot path). Keys with a TTL must go through the methods.
        """
        return self._counters

    def get_now(self, key: str) -> int:
        """The counter's value (0 when absent or expired)."""
        if key in self._expires and self._expires[key] <= self.clock():
            self._counters.pop(key, None)
            del self._expires[key]
            return 0
        return self._counters.get(key, 0)

    def add_now(self, key: str, delta: int, ttl: float | None = None) -> int:
        """Add ``delta`` to one counter; returns the new value."""
        counters = self._counters
        # Counters without a TTL (budgets in memory) skip the expiry check: the hot path.
        value = (self.get_now(key) if self._expires else counters.get(key, 0)) + delta
        counters[key] = value
        if ttl is not None:
            self._expires[key] = self.clock() + ttl
        return value

    def reserve_now(self, key: str, amount: int, limit: int, ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` only if the counter stays within ``limit``."""
        counters = self._counters
        value = self.get_now(key) if self._expires else counters.get(key, 0)
        if value + amount > limit:
            return False, value
        value += amount
        counters[key] = value
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

    def window(self, key: str) -> _Window:
        """The sliding-window log of ``key`` (created empty): the rate limiter keeps it to skip the lookup."""
        log = self._windows.get(key)
        if log is None:
            log = self._windows[key] = _Window()
        return log

    def window_acquire_now(self, key: str, entry: Hashable, amount: int, limit: int,
                           window: float) -> tuple[bool, float]:
        """Sliding-window log; each entry is appended and expired once, so O(1) amortised."""
        return self.window(key).acquire(self.clock(), entry, amount, limit, window)

    def window_adjust_now(self, key: str, entry: Hashable, delta: int) -> None:
        """Settle an admitted entry to its real amount (entries already expired are left alone)."""
        log = self._windows.get(key)
        if log is None:
            return
        amounts = log.amounts  # _Window.adjust, inlined: settling runs for every request
        old = amounts.get(entry)
        if old is None:
            return
        new = old + delta
        if new < 0:
            new = 0
        log.total += new - old
        amounts[entry] = new

    def bucket_acquire_now(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA: one theoretical arrival time per key."""
        now = self.clock()
        interval = 1.0 / rate
        tat = max(self._tats.get(key, now), now)
        new_tat = tat + amount * interval
        allow_at = new_tat - burst * interval
        # 1 ns of slack: summing intervals in floating point must not refuse the last unit of a burst.
        if allow_at - now > 1e-9 and tat > now:
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

    def cooldown_known(self, key: str) -> float | None:
        """Always known in-process: :meth:`cooldown_remaining_now`."""
        return self.cooldown_remaining_now(key)

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

    def append_now(self, table: str, record: Mapping[str, Any]) -> None:
        """Append a record (kept in memory, bounded by ``max_records``)."""
        rows = self._ledger.get(table)
        if rows is None:
            rows = self._ledger[table] = deque(maxlen=self._max_records)
        rows.append(dict(record))

    def append_nowait(self, table: str, record: Mapping[str, Any]) -> None:
        """Append at once (nothing to wait for)."""
        self.append_now(table, record)

    async def append(self, table: str, record: Mapping[str, Any]) -> None:
        """Append a record (kept in memory, bounded by ``max_records``)."""
        self.append_now(table, record)

    async def records(self, table: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """The table's records, oldest first."""
        rows = self._ledger.get(table, ())
        return [dict(r) for r in rows if since is None or r.get("ts", 0.0) >= since]
