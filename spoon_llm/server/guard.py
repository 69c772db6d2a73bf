"""Per-key admission: model allow-list, requests and tokens per minute, requests at once, and spend.

Everything is counted in the gateway's state store through the library's own machinery: rpm/tpm through
:class:`~spoon_llm.ratelimit.RateLimiter` (sliding window), spend through
:class:`~spoon_llm.costs.BudgetManager` (reserve before, settle after), requests at once as a store counter. With
the Redis store every replica shares those counts atomically; with the memory store no operation awaits.

:meth:`KeyGuard.admit` returns an :class:`Admission` that must be released exactly once, with what the request
really cost (``release(cost_usd, tokens)``), or with nothing when it failed; used as an async context manager it
is released on every exit path, cancellation included.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from ..costs.budgets import Budget, BudgetManager, Reservation
from ..errors import BudgetExceededError, RateLimitError
from ..ratelimit.limiter import Permit, RateLimiter
from ..ratelimit.settings import LimitSettings
from ..state.base import NOT_HELD, StoreClient, StoreUnavailableError
from ..types import TokenUsage
from .auth import GatewayAuthError, Principal

if TYPE_CHECKING:
    from ..config.models import SpoonConfig
    from ..routing.deployment import DeploymentState
    from ..state.base import StateStore
    from .keys import KeyStore, VirtualKey

__all__ = ["Admission", "KeyGuard", "build_guard", "key_spend"]

logger = logging.getLogger("spoon_llm.server.guard")

#: Requests-at-once counters expire this long after the last change, so a crashed replica's holds fade away.
_INFLIGHT_TTL = 3600.0


@dataclass(slots=True)
class _Subject:
    """What the rate limiter keys a virtual key's limits under (it reads ``name`` and ``provider_name``)."""

    name: str
    provider_name: str = "gateway"


@dataclass(slots=True)
class _Plan:
    """What the guard derived from one version of a key's record."""

    record: VirtualKey
    subject: _Subject
    inflight_key: str
    budget_provider: str
    limited: bool


class Admission:
    """What one admitted request holds; :meth:`release` it exactly once (later calls do nothing)."""

    __slots__ = ("_guard", "_inflight", "_permit", "_reservation", "released")

    def __init__(self, guard: KeyGuard | None, inflight: str | None = None, permit: Permit | None = None,
                 reservation: Reservation | None = None) -> None:
        self._guard = guard
        self._inflight = inflight
        self._permit = permit
        self._reservation = reservation
        self.released = guard is None

    async def release(self, cost_usd: float | None = None, tokens: TokenUsage | int | None = None) -> None:
        """Settle spend to ``cost_usd`` and tokens to ``tokens`` (``None``: the request cost nothing; refund).

        Runs to the end even when the caller is cancelled meanwhile, so nothing stays held.
        """
        if self.released:
            return
        self.released = True
        guard = self._guard
        assert guard is not None
        if self._inflight is None and self._permit is None and self._reservation is None:
            return  # a key without limits: nothing was taken
        if guard.store.sync and guard._release_now(self, cost_usd, tokens):
            return
        await asyncio.shield(guard._release(self._inflight, self._permit, self._reservation, cost_usd, tokens))

    async def __aenter__(self) -> Admission:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


#: The master key's admission: nothing held.
_FREE = Admission(None)


def _usage(tokens: TokenUsage | int | None) -> TokenUsage | None:
    if tokens is None or isinstance(tokens, TokenUsage):
        return tokens
    return TokenUsage(input_tokens=int(tokens))


class KeyGuard(StoreClient):
    """Admits a :class:`Principal`'s request for a model against its key's limits, or raises.

    ``store`` counts requests per minute, tokens per minute and requests at once; ``budget_store`` (default: the
    same) holds each key's spend.

    Refusals are :class:`GatewayAuthError`: 403 ``model_not_allowed``, 429 ``rate_limited`` or
    ``too_many_concurrent`` (with ``retry_after``), 402 ``budget_exceeded``, 503 ``state_store_unavailable``
    (``fail_mode="closed"`` and the store cannot be reached; ``open`` admits without limits instead).
    """

    def __init__(self, store: StateStore, *, budget_store: StateStore | None = None,
                 fail_mode: Literal["closed", "open"] = "closed", owns_stores: bool = False) -> None:
        self.store = store
        self.fail_mode = fail_mode
        self._owned = list(dict.fromkeys((store, budget_store or store))) if owns_stores else []
        self.budgets = BudgetManager(budget_store or store)
        self._sync = store.sync and (budget_store or store).sync
        self._releasing: set[asyncio.Future[None]] = set()
        self.limiter = RateLimiter(store, fail_mode=fail_mode)
        self._plans: dict[str, _Plan] = {}

    async def close(self) -> None:
        """Close the state stores when this guard opened them (:func:`build_guard`)."""
        owned, self._owned = self._owned, []
        for store in owned:
            await store.close()

    # -- plans --------------------------------------------------------------------------------------------------

    def _plan(self, record: VirtualKey) -> _Plan:
        plan = self._plans.get(record.id)
        if plan is not None and plan.record is record:
            return plan
        name = f"vkey:{record.id}"
        subject = _Subject(name)
        limited = record.rpm is not None or record.tpm is not None
        if plan is None or (plan.record.rpm, plan.record.tpm) != (record.rpm, record.tpm):
            self.limiter.set_limits(name, LimitSettings(rpm=record.rpm, tpm=record.tpm, on_limit="fail",
                                                        header_pacing=False))
        budget_name = f"key:{record.id}"
        if record.budget_limit is None:
            if budget_name in self.budgets.budgets:
                self.budgets.remove(budget_name)
        else:
            current = self.budgets.budgets.get(budget_name)
            if current is None or (current.limit, current.period) != (record.budget_limit, record.budget_period):
                self.budgets.add(Budget(name=budget_name, limit=record.budget_limit, period=record.budget_period,
                                        scope="provider", match=name))
        plan = self._plans[record.id] = _Plan(record, subject, f"gw:inflight:{record.id}", name, limited)
        return plan

    # -- admission ----------------------------------------------------------------------------------------------

    async def admit(self, principal: Principal, model: str, *, estimate_usd: float | None = None,
                    input_tokens: int = 0, output_tokens: int = 0, request_id: str | None = None) -> Admission:
        """Check and take everything the request needs, or raise holding nothing.

        ``estimate_usd`` is the worst-case cost reserved against the key's budget (``None`` reserves nothing
        but is refused once the budget is used up); ``input_tokens + output_tokens`` is what the key's tpm limit
        holds until :meth:`Admission.release` settles it to the real usage (without an estimate the request is
        admitted while the minute's usage is under the limit, and counted when it settles).
        """
        if not principal.may_use(model):
            raise GatewayAuthError(f"API key {principal.alias!r} may not use model {model!r}", status=403,
                                   code="model_not_allowed")
        record = principal.key
        if record is None:
            return _FREE
        plan = self._plan(record)
        if not plan.limited and record.max_concurrent is None and record.budget_limit is None:
            return _FREE  # a key without limits: nothing to take
        if self._sync:  # nothing below waits, so nothing can be interrupted half-way
            return await self._take(plan, model, estimate_usd, input_tokens, output_tokens, request_id)
        # A shared store: a cancelled caller (the client went away) must not leave a hold the store has already
        # granted, so the checks run to the end on their own and an orphaned admission is released.
        task = asyncio.ensure_future(self._take(plan, model, estimate_usd, input_tokens, output_tokens,
                                                request_id))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._orphaned)
            raise

    def _orphaned(self, task: asyncio.Future[Admission]) -> None:
        if task.cancelled() or task.exception() is not None:
            return  # refused or failed: _take gave back what it held
        release = asyncio.ensure_future(task.result().release())
        self._releasing.add(release)
        release.add_done_callback(self._releasing.discard)

    async def _take(self, plan: _Plan, model: str, estimate_usd: float | None, input_tokens: int,
                    output_tokens: int, request_id: str | None) -> Admission:
        record = plan.record
        inflight = None
        reservation = None
        try:
            if record.max_concurrent is not None:
                inflight = await self._enter(plan, record.max_concurrent)
            if record.budget_limit is not None:
                reservation = await self._reserve(plan, estimate_usd, model, request_id)
            if plan.limited and record.tpm is not None and input_tokens + output_tokens <= 0:
                input_tokens = 1  # no estimate: hold one token, so the real usage is counted when settled
            permit = await self._acquire(plan, model, input_tokens, output_tokens) if plan.limited else None
        except BaseException:
            await asyncio.shield(self._release(inflight, None, reservation, None, None))
            raise
        return Admission(self, inflight, permit, reservation)

    async def _enter(self, plan: _Plan, limit: int) -> str | None:
        now = self._now
        key = plan.inflight_key
        try:
            if now is not None:
                ok, value = now.reserve_now(key, 1, limit)
            else:
                ok, value = await self.store.reserve(key, 1, limit, ttl=_INFLIGHT_TTL)
        except StoreUnavailableError as exc:
            self._store_failed(exc)
            return None
        if ok and value == NOT_HELD:  # the store failed open: admitted, nothing to give back
            return None
        if not ok:
            raise GatewayAuthError(f"API key {plan.record.alias!r} already has {limit} requests in flight, its "
                                   "max_concurrent limit", status=429, code="too_many_concurrent", retry_after=1.0)
        return key

    async def _reserve(self, plan: _Plan, estimate: float | None, model: str,
                       request_id: str | None) -> Reservation | None:
        budgets = self.budgets
        try:
            reservation = budgets.reserve_now(estimate, plan.budget_provider, None, model, request_id)
            if reservation is None:
                reservation = await budgets.reserve(estimate, provider=plan.budget_provider, model=model,
                                                    request_id=request_id)
        except BudgetExceededError as exc:
            record = plan.record
            raise GatewayAuthError(f"API key {record.alias!r} has used its {record.budget_period} budget of "
                                   f"${record.budget_limit:.6g} (spent ${exc.spent or 0.0:.6g}, "
                                   f"reserved ${exc.reserved or 0.0:.6g} in flight)", status=402,
                                   code="budget_exceeded") from None
        except StoreUnavailableError as exc:
            self._store_failed(exc)
            return None
        return reservation

    async def _acquire(self, plan: _Plan, model: str, input_tokens: int, output_tokens: int) -> Permit:
        limiter = self.limiter
        subject = cast("DeploymentState", plan.subject)
        permit = limiter.acquire_now(subject, input_tokens, output_tokens)
        if permit is not None:
            return permit
        try:
            return await limiter.acquire(subject, input_tokens=input_tokens, output_tokens=output_tokens,
                                         model=model)
        except StoreUnavailableError as exc:  # fail_mode closed: not the key's limit, the store was not reached
            raise GatewayAuthError(f"the state store is unreachable, so per-key limits cannot be checked: "
                                   f"{exc.message}", status=503, code="state_store_unavailable",
                                   retry_after=1.0) from None
        except RateLimitError as exc:
            if isinstance(exc.__cause__, StoreUnavailableError):  # not the key's limit: the store was not reached
                raise GatewayAuthError(f"the state store is unreachable, so per-key limits cannot be checked: "
                                       f"{exc.message}", status=503, code="state_store_unavailable",
                                       retry_after=1.0) from None
            record = plan.record
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            limits = ", ".join(f"{n} {v}" for n, v in (("rpm", record.rpm), ("tpm", record.tpm)) if v is not None)
            raise GatewayAuthError(f"API key {record.alias!r} is over its rate limit ({limits}); retry in "
                                   f"{wait:.2f}s", status=429, code="rate_limited", retry_after=wait) from None

    def _store_failed(self, exc: StoreUnavailableError) -> None:
        if self.fail_mode == "open":
            logger.error("state store unreachable; fail_mode=open: admitting without per-key limits: %s", exc)
            return
        raise GatewayAuthError(f"the state store is unreachable, so per-key limits cannot be checked: {exc}",
                               status=503, code="state_store_unavailable", retry_after=1.0) from None

    # -- release ------------------------------------------------------------------------------------------------

    def _release_now(self, admission: Admission, cost: float | None, tokens: TokenUsage | int | None) -> bool:
        # The memory store: everything synchronously, no task.
        now = self._now
        if now is None:
            return False
        reservation = admission._reservation
        if reservation is not None:
            done = (self.budgets.release_now(reservation) if cost is None
                    else self.budgets.settle_now(reservation, cost))
            if not done:
                return False  # an alert may fire: the async path settles (the rest with it)
        if admission._permit is not None:
            self.limiter.settle_now(admission._permit, _usage(tokens))
        if admission._inflight is not None:
            now.add_now(admission._inflight, -1)
            admission._inflight = None
        return True

    async def _release(self, inflight: str | None, permit: Permit | None, reservation: Reservation | None,
                       cost: float | None, tokens: TokenUsage | int | None) -> None:
        try:
            if reservation is not None:
                try:
                    if cost is None:
                        await self.budgets.release(reservation)
                    else:
                        await self.budgets.settle(reservation, cost)
                except StoreUnavailableError as exc:
                    logger.error("could not settle a key's budget reservation (%s); spend not recorded", exc)
            if permit is not None:
                await self.limiter.settle(permit, _usage(tokens))
        finally:
            if inflight is not None:
                try:
                    now = self._now
                    if now is not None:
                        now.add_now(inflight, -1)
                    else:
                        await self.store.add({inflight: -1}, ttl=_INFLIGHT_TTL)
                except StoreUnavailableError as exc:
                    logger.error("could not release a requests-at-once hold (%s); it expires within %.0fs",
                                 exc, _INFLIGHT_TTL)


def _ledger_kind(config: SpoonConfig) -> str:
    state = config.state
    return state.ledger if state.ledger != "auto" else ("redis" if state.backend == "redis" else "sqlite")


def build_guard(config: SpoonConfig, key_store: KeyStore | None = None) -> KeyGuard | None:
    """The gateway's guard, or ``None`` when there is no key store (then only the master key exists: no limits).

    The stores follow ``[state]`` as the library's own limits and budgets do: requests and tokens per minute and
    requests at once in ``backend`` (``memory`` counts per worker process, ``sqlite`` per host, ``redis`` across
    replicas); each key's spend in ``ledger`` (``auto``: Redis when ``backend`` is Redis, else the SQLite state
    file, so spend survives restarts). ``fail_mode`` applies when a store cannot be reached. Close the guard with
    :meth:`KeyGuard.close`.
    """
    if key_store is None:
        return None
    from ..state import open_store

    state = config.state
    store = open_store(state.backend, config=state)
    kind = _ledger_kind(config)
    budget_store = store if kind == state.backend else open_store(kind, config=state)
    return KeyGuard(store, budget_store=budget_store, fail_mode=state.fail_mode, owns_stores=True)


async def key_spend(config: SpoonConfig, record: VirtualKey) -> dict[str, Any] | None:
    """A key's budget this period: limit, spent, reserved, remaining and percent.

    Read from the ledger store the gateway writes; ``None`` for a key without a budget, or when spend is kept in
    each gateway process (``[state] ledger = "memory"``).
    """
    if record.budget_limit is None:
        return None
    from ..state import open_store

    if _ledger_kind(config) == "memory":
        return None  # spend lives in each gateway process: nothing to read from here
    store = open_store(_ledger_kind(config), config=config.state)
    try:
        name = f"key:{record.id}"
        budgets = BudgetManager(store, [Budget(name=name, limit=record.budget_limit, period=record.budget_period,
                                               scope="provider", match=f"vkey:{record.id}")])
        return (await budgets.snapshot())[name]
    finally:
        await store.close()
