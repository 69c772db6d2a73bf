"""Spending budgets: global, per provider and per tag; total, daily or monthly; safe under concurrency.

Before a call the worst-case cost (estimated input + ``max_tokens`` of output) is *reserved* against every budget
that applies, atomically in the state store; after the call the reservation is *settled* to the real cost (or
released on failure). Admission checks ``spent + reserved + worst case <= limit``, so however many requests run at
once, spend can exceed a limit only by what real usage overshot its reservation.

Alerts fire once per crossing of each threshold (default 75% "warning", 90% "critical") through callbacks, the
``spoon_llm.budget`` logger and, when given an :class:`~spoon_llm.events.EventBus`, an ``Event("budget_alert")``.
With a shared store the "once" holds across processes too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BudgetExceededError
from ..state.base import NANO, NOT_HELD, StoreClient, from_nano, to_nano

if TYPE_CHECKING:
    from ..events import EventBus
    from ..state.base import StateStore

__all__ = ["Budget", "BudgetAlert", "BudgetManager", "Reservation"]

logger = logging.getLogger("spoon_llm.budget")

Period = Literal["total", "daily", "monthly"]
_TTL = {"total": None, "daily": 3 * 86400.0, "monthly": 62 * 86400.0}
_INF = math.inf
_ceil = math.ceil


@dataclass(slots=True)
class Budget:
    """One limit on spend.

    ``scope``: ``global`` (every request), ``provider`` (requests to provider section ``match``) or ``tag``
    (requests tagged ``match=value``; with ``value=None`` every value of tag ``match`` gets its own limit).
    """

    name: str
    limit: float
    period: Period = "total"
    scope: Literal["global", "provider", "tag"] = "global"
    match: str | None = None
    value: str | None = None
    thresholds: tuple[float, ...] = (0.75, 0.9)

    def scope_key(self, provider: str, tags: Mapping[str, str] | None) -> str | None:
        """The key this budget counts a request under, or ``None`` when it does not apply."""
        if self.scope == "global":
            return self.name
        if self.scope == "provider":
            return self.name if provider == self.match else None
        tag = (tags or {}).get(self.match or "")
        if tag is None or (self.value is not None and tag != self.value):
            return None
        return self.name if self.value is not None else f"{self.name}={tag}"


@dataclass(slots=True)
class BudgetAlert:
    """A threshold crossing: ``level`` is ``warning`` (first threshold), ``critical`` (later ones)."""

    budget: str
    threshold: float
    level: str
    spent: float
    limit: float
    period: str
    period_id: str
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (the event's ``data``)."""
        return {"budget": self.budget, "threshold": self.threshold, "level": self.level, "spent": self.spent,
                "limit": self.limit, "period": self.period, "period_id": self.period_id}


@dataclass(slots=True)
class _Slot:
    """One budget key in one period: its store keys, limit and what this process last saw of it."""

    budget: Budget
    key: str
    pid: str
    committed: str
    spent: str
    limit: int
    ttl: float | None
    next_alert: float
    seen_committed: int = 0
    seen_spent: int = 0


@dataclass(slots=True)
class Reservation:
    """What one attempt holds: ``amount`` nano-units against each budget slot in ``slots``."""

    slots: list[_Slot] = field(default_factory=list)
    amount: int = 0
    request_id: str | None = None
    settled: bool = False
    #: Budgets whose store failed open at reservation (nothing held there): their spend is still recorded.
    unheld: list[_Slot] = field(default_factory=list)


def period_id(period: Period, now: float) -> str:
    """The bucket a moment falls in: ``all``, ``2025-06-01`` (UTC day) or ``2025-06`` (UTC month)."""
    if period == "total":
        return "all"
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")


def _period_end(period: Period, now: float) -> float:
    if period == "total":
        return math.inf
    moment = datetime.fromtimestamp(now, timezone.utc)
    if period == "daily":
        start = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
        return start.timestamp() + 86_400
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


class BudgetManager(StoreClient):
    """Reserve, settle and release spend against budgets kept in a state store.

    ``on_alert`` callbacks receive a :class:`BudgetAlert`; ``events`` (an EventBus) also gets an
    ``Event("budget_alert")``. Budgets can be added, changed and removed at run time (the admin API uses
    :meth:`set_limit`). With the memory store every operation is synchronous underneath (no await per counter).
    """

    def __init__(self, store: StateStore, budgets: Iterable[Budget] = (), *, events: EventBus | None = None,
                 on_alert: Iterable[Callable[[BudgetAlert], Any]] = (), clock: Callable[[], float] = time.time,
                 namespace: str | None = None) -> None:
        self.store = store
        #: Whose spend this is: keys are ``budget:<namespace>:<budget>:<period>`` (see ``costs.namespace``).
        self.namespace = namespace
        self._prefix = f"budget:{namespace}:" if namespace else "budget:"
        self.events = events
        self.callbacks: list[Callable[[BudgetAlert], Any]] = list(on_alert)
        self.clock = clock
        self._budgets: dict[str, Budget] = {}
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._periods: dict[str, tuple[str, float]] = {}
        # (provider, tags) -> the slots a request counts against, valid until the first period ends. Without
        # per-tag budgets the tags cannot matter and the key is the provider alone (no tuple per request).
        self._plans: dict[Any, tuple[list[_Slot], float]] = {}
        self._by_tag = False
        #: True when at least one budget is set.
        self.active = False
        self.alerts: list[BudgetAlert] = []
        for budget in budgets:
            self.add(budget)

    # -- configuration ----------------------------------------------------------------------------------------

    @property
    def budgets(self) -> dict[str, Budget]:
        """The budgets by name."""
        return dict(self._budgets)

    def add(self, budget: Budget) -> None:
        """Add or replace a budget (its spend so far is kept: it lives in the store under the name)."""
        self._budgets[budget.name] = budget
        self._changed()

    def remove(self, name: str) -> None:
        """Drop a budget; its recorded spend stays in the store."""
        self._budgets.pop(name, None)
        self._changed()

    def set_limit(self, name: str, limit: float, *, period: Period | None = None) -> Budget:
        """Change a budget's limit (and optionally period) at run time; unknown names raise ``KeyError``."""
        budget = self._budgets[name]
        budget.limit = float(limit)
        if period is not None:
            budget.period = period
        self._changed()  # cached limits and alert levels
        return budget

    def _changed(self) -> None:
        self._slots.clear()
        self._plans.clear()
        self._by_tag = any(b.scope == "tag" for b in self._budgets.values())
        self.active = bool(self._budgets)

    def on_alert(self, callback: Callable[[BudgetAlert], Any]) -> None:
        """Register a callback for threshold crossings."""
        self.callbacks.append(callback)

    # -- slots ------------------------------------------------------------------------------------------------

    def _period(self, period: Period, now: float) -> str:
        cached = self._periods.get(period)
        if cached is None or now >= cached[1]:
            cached = self._periods[period] = (period_id(period, now), _period_end(period, now))
        return cached[0]

    def _slot(self, budget: Budget, key: str, now: float) -> _Slot:
        pid = self._period(budget.period, now)
        slot = self._slots.get((key, pid))
        if slot is None or slot.budget is not budget:
            base = f"{self._prefix}{key}:{pid}"
            limit = to_nano(budget.limit)
            slot = _Slot(budget, key, pid, base + ":committed", base + ":spent", limit, _TTL[budget.period],
                         _next_alert(budget, limit, -1))
            self._slots[(key, pid)] = slot
        return slot

    # -- the request path -------------------------------------------------------------------------------------

    def _plan(self, provider: str, tags: Mapping[str, str] | None) -> list[_Slot]:
        key: Any = (provider, tuple(tags.items()) if tags else ()) if self._by_tag else provider
        hit = self._plans.get(key)
        if hit is not None:
            until = hit[1]
            if until == math.inf or self.clock() < until:  # "total" budgets never roll over: no clock read
                return hit[0]
        now = self.clock()
        slots: list[_Slot] = []
        until = math.inf
        for budget in self._budgets.values():
            scope = budget.scope_key(provider, tags)
            if scope is not None:
                slots.append(self._slot(budget, scope, now))
                until = min(until, self._periods[budget.period][1])
        if len(self._plans) > 10_000:  # many distinct tag values: start over rather than grow without bound
            self._plans.clear()
        self._plans[key] = (slots, until)
        return slots

    # Each operation is written once: a synchronous core (``*_now``) for a store whose state lives in this process
    # (no await per counter, budget counters updated in place: they never get a TTL there, their period is in the
    # key), and an awaiting method that calls it when it can and otherwise goes through the store's atomic
    # operations (SQLite, Redis).

    def reserve_now(self, amount: float | None, provider: str, tags: Mapping[str, str] | None = None,
                    model: str | None = None, request_id: str | None = None) -> Reservation | None:
        """:meth:`reserve` without awaiting, for a synchronous (memory) store; ``None`` when it cannot."""
        now = self._now
        if now is None:
            return None
        hit = self._plans.get(provider) if not self._by_tag else None
        slots = hit[0] if hit is not None and hit[1] == _INF else self._plan(provider, tags)
        nano = _ceil(amount * NANO) if amount else 0
        counters = now.live_counters()
        index = 0
        for slot in slots:
            key = slot.committed
            value = counters.get(key, 0)
            # Zero holds must still see room left (value < limit), hence limit - 1 for them.
            if value + nano > (slot.limit if nano else slot.limit - 1):
                for taken in slots[:index]:
                    taken.seen_committed = counters[taken.committed] = counters.get(taken.committed, 0) - nano
                spent = counters.get(slot.spent, 0)
                slot.seen_spent = max(slot.seen_spent, spent)
                raise self._refusal(slot, value, spent, nano, provider, model)
            slot.seen_committed = counters[key] = value + nano
            index += 1
        return Reservation(slots, nano, request_id)

    def release_now(self, reservation: Reservation) -> bool:
        """:meth:`release` without awaiting; False (nothing done) when the store is not synchronous."""
        now = self._now
        if now is None:
            return reservation.settled
        if not reservation.settled:
            reservation.settled = True
            amount = reservation.amount
            if amount:
                counters = now.live_counters()
                for slot in reservation.slots:
                    key = slot.committed
                    slot.seen_committed = counters[key] = counters.get(key, 0) - amount
        return True

    def settle_now(self, reservation: Reservation, actual: float) -> bool:
        """:meth:`settle` without awaiting (alerts included); False (nothing done) when the store is not synchronous."""
        now = self._now
        if now is None or reservation.settled:
            return reservation.settled
        reservation.settled = True
        real = round(actual * NANO) if actual > 0 else 0
        held = reservation.amount
        if real == 0 and held == 0:
            return True
        counters = now.live_counters()
        for slot in reservation.slots:
            key = slot.committed
            slot.seen_committed = counters[key] = counters.get(key, 0) + real - held
            key = slot.spent
            spent = slot.seen_spent = counters[key] = counters.get(key, 0) + real
            if spent >= slot.next_alert:
                for claim, threshold, level in self._crossed(slot, spent):
                    if now.reserve_now(claim, 1, 1, slot.ttl)[0]:
                        self._fire(self._alert(slot, threshold, level, spent, reservation.request_id))
        return True

    def _refusal(self, slot: _Slot, committed: int, spent: int, nano: int, provider: str, model: str | None
                 ) -> BudgetExceededError:
        budget = slot.budget
        reserved = max(committed - spent, 0)
        return BudgetExceededError(
            f"budget {slot.key!r} ({budget.period}) would be exceeded: limit {budget.limit:.6g}, spent "
            f"{from_nano(spent):.6g}, reserved {from_nano(reserved):.6g} by requests in flight, and this request "
            f"reserves up to {from_nano(nano):.6g} (its worst case)",
            budget=slot.key, limit=budget.limit, spent=from_nano(spent), provider=provider, model=model,
            reserved=from_nano(reserved), requested=from_nano(nano))

    async def reserve(self, amount: float | None, *, provider: str, tags: Mapping[str, str] | None = None,
                      model: str | None = None, request_id: str | None = None) -> Reservation:
        """Hold ``amount`` (the worst-case cost) against every applicable budget, or refuse.

        Raises :class:`BudgetExceededError` holding nothing. ``amount=None`` (an unpriced request) holds nothing
        but is still refused once a budget is used up.
        """
        held = self.reserve_now(amount, provider, tags, model, request_id)
        if held is not None:
            return held
        slots = self._plan(provider, tags)
        nano = math.ceil(amount * NANO) if amount else 0
        store = self.store
        holding: list[_Slot] = []
        unheld: list[_Slot] = []
        try:
            for slot in slots:
                # Zero holds must still see room left (value < limit), hence limit - 1 for them.
                limit = slot.limit if nano else slot.limit - 1
                ok, value = await store.reserve(slot.committed, nano, limit, ttl=slot.ttl)
                if not ok:
                    spent = await store.get(slot.spent)  # the refusal path only: say the truth, not a cached value
                    slot.seen_spent = max(slot.seen_spent, spent)
                    raise self._refusal(slot, value, spent, nano, provider, model)
                if value == NOT_HELD:  # the store failed open: admitted, but nothing to give back there
                    unheld.append(slot)
                    continue
                holding.append(slot)
                slot.seen_committed = value
        except BaseException:
            if holding:  # what the earlier budgets hold goes back, whatever stopped the later ones
                try:
                    await self.release(Reservation(holding, nano))
                except Exception as exc:  # the store failing again: its own fail_mode has spoken
                    logger.warning("giving back a partial budget reservation failed: %s", exc)
            raise
        return Reservation(holding, nano, request_id, unheld=unheld)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        """Replace the reservation by the real cost and fire any alerts it crosses."""
        if self.settle_now(reservation, actual):
            return
        reservation.settled = True
        real = round(actual * NANO) if actual > 0 else 0
        held = reservation.amount
        if real == 0 and held == 0:
            return
        store = self.store
        for slot in reservation.unheld:  # nothing was held there: the spend is added whole
            await store.add_eventually({slot.committed: real, slot.spent: real}, ttl=slot.ttl)
        for slot in reservation.slots:
            values = await store.add_eventually({slot.committed: real - held, slot.spent: real}, ttl=slot.ttl)
            if values is None:
                continue  # kept by the store, applied later: the alerts it crosses fire with a later settle
            committed, spent = values
            slot.seen_committed = committed
            if spent > slot.seen_spent:  # concurrent settles resume in any order
                slot.seen_spent = spent
            if spent >= slot.next_alert:
                # The value this settle saw, not slot.seen_spent: one atomic claim per crossing, so with a shared
                # store exactly one process fires it.
                for claim, threshold, level in self._crossed(slot, spent):
                    claimed, _ = await store.reserve(claim, 1, 1, ttl=slot.ttl)
                    if claimed:
                        self._fire(self._alert(slot, threshold, level, spent, reservation.request_id))

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back unused (the call failed before costing anything)."""
        if self.release_now(reservation):
            return
        reservation.settled = True
        if reservation.amount:
            for slot in reservation.slots:
                # Never lost: a store that cannot take it now keeps it and applies it later (exactly once).
                values = await self.store.add_eventually({slot.committed: -reservation.amount}, ttl=slot.ttl)
                if values is not None:
                    slot.seen_committed = values[0]

    async def record(self, actual: float, *, provider: str, tags: Mapping[str, str] | None = None) -> None:
        """Count spend that had no reservation (e.g. reported after the fact) against the applicable budgets."""
        await self.settle(Reservation(self._plan(provider, tags), 0), actual)

    async def flush(self) -> None:
        """Wait for settles and releases still under way, then have the store apply what it kept for later.

        Settles and releases of finished (and cancelled) requests may run on after them; afterwards the store
        reflects every finished request, as far as it answers (:meth:`snapshot` shows only what requests still in
        flight hold).
        """
        from .._background import drain

        await drain()
        await self.store.flush()

    # -- alerts -----------------------------------------------------------------------------------------------

    def _crossed(self, slot: _Slot, spent: int) -> list[tuple[str, float, str]]:
        """The thresholds ``spent`` reaches, as (claim key, threshold, level); the caller claims each once.

        Every one of them is then claimed here or elsewhere, so the slot's next alert moves past ``spent``: at
        worst a later settle re-checks one (its claim then fails), never skips one.
        """
        budget = slot.budget
        if slot.limit <= 0:
            slot.next_alert = math.inf
            return []
        crossed = []
        for index, threshold in enumerate(sorted(budget.thresholds)):
            if spent < threshold * slot.limit:
                break
            crossed.append((f"{self._prefix}{slot.key}:{slot.pid}:alert:{threshold}", threshold,
                            "warning" if index == 0 else "critical"))
        slot.next_alert = _next_alert(budget, slot.limit, spent)
        return crossed

    @staticmethod
    def _alert(slot: _Slot, threshold: float, level: str, spent: int, request_id: str | None) -> BudgetAlert:
        budget = slot.budget
        return BudgetAlert(slot.key, threshold, level, from_nano(spent), budget.limit, budget.period, slot.pid,
                           request_id)

    async def rearm(self, name: str) -> None:
        """Let a budget's alerts fire again (after its limit was raised, the admin API calls this)."""
        budget = self._budgets[name]
        pid = self._period(budget.period, self.clock())
        await self.store.add({f"{self._prefix}{name}:{pid}:alert:{t}": -1 for t in budget.thresholds})
        self._changed()

    def _fire(self, alert: BudgetAlert) -> None:
        self.alerts.append(alert)
        log = logger.critical if alert.level == "critical" else logger.warning
        log("budget %r reached %.0f%% of its %s limit: %.6g of %.6g spent", alert.budget, alert.threshold * 100,
            alert.period, alert.spent, alert.limit)
        for callback in self.callbacks:
            try:
                callback(alert)
            except Exception:
                logger.exception("budget alert callback %r failed", callback)
        if self.events is not None:
            from ..events import Event

            self.events.emit(Event("budget_alert", alert.request_id or "", data=alert.to_dict()))

    # -- inspection -------------------------------------------------------------------------------------------

    async def spent(self, name: str, *, key: str | None = None) -> float:
        """Money spent against a budget in its current period (``key`` names one tag value's share)."""
        budget = self._budgets[name]
        pid = self._period(budget.period, self.clock())
        return from_nano(await self.store.get(f"{self._prefix}{key or name}:{pid}:spent"))

    async def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each budget's limit, spent, in-flight reservation and remaining money, read from the store."""
        now = self.clock()
        out: dict[str, dict[str, Any]] = {}
        for name, budget in self._budgets.items():
            pid = self._period(budget.period, now)
            committed, spent = await self.store.get_many([f"{self._prefix}{name}:{pid}:committed",
                                                          f"{self._prefix}{name}:{pid}:spent"])
            out[name] = _describe(budget, pid, committed, spent)
        return out

    async def load(self) -> None:
        """Read each budget's committed and spent money from the store (after a restart, or another process).

        :meth:`status` (synchronous) shows what this process last saw; after ``load`` that is what the store
        holds, so status, refusals and the store agree from the first request on.
        """
        now = self.clock()
        slots = [self._slot(budget, name, now) for name, budget in self._budgets.items()]
        if not slots:
            return
        values = await self.store.get_many([key for slot in slots for key in (slot.committed, slot.spent)])
        for index, slot in enumerate(slots):
            slot.seen_committed, slot.seen_spent = values[2 * index], values[2 * index + 1]
            # Thresholds already crossed were claimed (and fired) by whoever crossed them.
            slot.next_alert = _next_alert(slot.budget, slot.limit, slot.seen_spent)

    def status(self) -> dict[str, Any]:
        """Budgets as last seen by this process (synchronous; :meth:`snapshot` reads the store)."""
        now = self.clock()
        out: dict[str, Any] = {}
        for name, budget in self._budgets.items():
            pid = self._period(budget.period, now)
            slot = self._slots.get((name, pid))
            out[name] = _describe(budget, pid, slot.seen_committed if slot else 0, slot.seen_spent if slot else 0)
        for (key, pid), slot in self._slots.items():
            if key not in out and pid == self._period(slot.budget.period, now):
                out[key] = _describe(slot.budget, pid, slot.seen_committed, slot.seen_spent)
        return {"budgets": out, "alerts": [a.to_dict() for a in self.alerts[-20:]], "store": self.store.status()}


def _next_alert(budget: Budget, limit: int, spent: int) -> float:
    """The spend (nano-units) at which the first threshold above ``spent`` is crossed."""
    for threshold in sorted(budget.thresholds):
        level = threshold * limit
        if level > spent:
            return level
    return math.inf


def _describe(budget: Budget, pid: str, committed: int, spent: int) -> dict[str, Any]:
    used = from_nano(spent)
    return {"limit": budget.limit, "period": budget.period, "period_id": pid, "scope": budget.scope,
            "spent": used, "reserved": from_nano(max(committed - spent, 0)),
            "remaining": max(budget.limit - from_nano(committed), 0.0),
            "percent": (used / budget.limit * 100.0) if budget.limit else None}
