"""``RateLimiter``: per-deployment request and token limits, 429 cool-downs and header pacing.

Tokens are reserved before the call (estimated input + ``max_tokens`` of output) and settled to the real usage
after it (refunded on failure), atomically in the state store. When the store cannot be reached the limiter fails
closed (refuses) or open (admits, unlimited) as configured, and logs it as an error each time it happens (at most
once per 10 seconds, with a count) - it never falls back to private per-process limits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._background import undo_if_abandoned
from ..errors import RateLimitError, StateStoreError
from ..state.base import NOT_HELD, StoreClient, StoreUnavailableError, SyncStateStore
from .headers import HeaderPacer, parse_rate_limit_headers
from .settings import LimitSettings

if TYPE_CHECKING:
    from ..config.models import RateLimitConfig
    from ..errors import LLMError
    from ..routing.deployment import DeploymentState
    from ..state.base import StateStore, WindowLog
    from ..types import TokenUsage

__all__ = ["Permit", "RateLimiter"]

logger = logging.getLogger("spoon_llm.ratelimit")

# Entry ids must be unique across every process sharing a store.
_PROCESS = f"{os.getpid()}.{os.urandom(3).hex()}"
_entries = itertools.count(1)


@dataclass(slots=True)
class Permit:
    """What one admitted attempt holds: token reservations as ``(kind, store key, amount, rate or 0)``."""

    key: str
    entry: Any
    settings: LimitSettings
    holds: list[tuple[str, str, int, float]] = field(default_factory=list)
    waited: float = 0.0
    done: bool = False
    #: The request-count slots taken (rpm, rph), handed back by :meth:`RateLimiter.unsend` if nothing was sent.
    slots: list[tuple[str, str, int, float]] | None = None


@dataclass(slots=True)
class _KeyState:
    settings: LimitSettings
    key: str = ""
    cooldown_key: str = ""
    pacer: HeaderPacer = field(default_factory=HeaderPacer)
    #: The active limits: (name, limit, what it counts, window seconds, store key, rate or 0 for windows, burst).
    checks: list[tuple[str, int, str, float, str, float, float]] = field(default_factory=list)
    counts_tokens: bool = False
    #: With a synchronous store: its window log for each check (None for bucket checks), to skip the lookups.
    windows: list[WindowLog | None] | None = None
    admitted: int = 0
    refused: int = 0
    waits: int = 0
    waited: float = 0.0
    cooldowns: int = 0
    last_refusal: str | None = None

    def plan(self, key: str) -> None:
        """Precompute the checks once, so a request only walks the limits that are set."""
        s = self.settings
        self.key = key
        self.cooldown_key = "rl:" + key
        bucket = s.strategy != "sliding_window"
        self.checks = []
        for name, limit, counts, span in (("rpm", s.rpm, "requests", s.window), ("rph", s.rph, "requests",
                                                                                s.window * 60),
                                          ("tpm", s.tpm, "tokens", s.window), ("input_tpm", s.input_tpm, "input",
                                                                               s.window),
                                          ("output_tpm", s.output_tpm, "output", s.window)):
            if limit is None:
                continue
            rate = limit / span if bucket else 0.0
            burst = float(s.burst if s.burst and counts == "requests" else limit)
            self.checks.append((name, limit, counts, span, f"rl:{key}:{name}", rate, burst))
        self.counts_tokens = any(c[2] != "requests" for c in self.checks)


class RateLimiter(StoreClient):
    """Enforces each deployment's :class:`LimitSettings` through a state store.

    ``settings`` is fixed settings for every deployment, or a function of the deployment; by default they are read
    from the deployment's provider section (``rpm``, ``rph``, ``tpm``, ``input_tpm``, ``output_tpm``, ``burst``)
    with ``policy`` (the ``[rate_limits]`` section) for strategy and behaviour. ``fail_mode`` applies when the
    store is unreachable.
    """

    def __init__(self, store: StateStore, *,
                 settings: LimitSettings | Callable[[DeploymentState], LimitSettings] | None = None,
                 policy: RateLimitConfig | None = None, fail_mode: Literal["closed", "open"] = "closed",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.policy = policy
        self.fail_mode = fail_mode
        self.clock = clock
        self._settings = settings
        self._keys: dict[str, _KeyState] = {}
        self.store_failures = 0
        self.last_store_error: str | None = None
        self._last_log = 0.0
        self._unlogged = 0

    # -- settings ---------------------------------------------------------------------------------------------

    def _state(self, deployment: DeploymentState) -> _KeyState:
        state = self._keys.get(deployment.name)
        if state is None:
            if isinstance(self._settings, LimitSettings):
                settings = self._settings
            elif self._settings is not None:
                settings = self._settings(deployment)
            else:
                settings = LimitSettings.from_config(deployment.config, self.policy)
            state = self._keys[deployment.name] = _KeyState(settings)
            self._plan(state, deployment.name)
        return state

    def _plan(self, state: _KeyState, key: str) -> None:
        state.plan(key)
        now = self._now
        state.windows = [None if check[5] else now.window(check[4]) for check in state.checks] if now else None

    def settings_for(self, deployment: DeploymentState) -> LimitSettings:
        """The limits that apply to ``deployment``."""
        return self._state(deployment).settings

    def set_limits(self, deployment: str, settings: LimitSettings) -> None:
        """Replace a deployment's limits at run time (by deployment name)."""
        state = self._keys.get(deployment)
        if state is None:
            state = self._keys[deployment] = _KeyState(settings)
        else:
            state.settings = settings
        self._plan(state, deployment)

    # -- admission --------------------------------------------------------------------------------------------

    def needs_tokens(self, deployment: DeploymentState) -> bool:
        """True when admission depends on the attempt's token estimate (token limits or token headers)."""
        state = self._keys.get(deployment.name) or self._state(deployment)
        return state.counts_tokens or state.pacer.tokens_left is not None

    def acquire_now(self, deployment: DeploymentState, input_tokens: int = 0, output_tokens: int = 0) -> Permit | None:
        """Admit without awaiting when that needs no round trip.

        That is: the store is synchronous and there is room, or the deployment has no limits and the store knows
        in-process that it is not cooling down (:meth:`~spoon_llm.state.base.StateStore.cooldown_known`).
        Otherwise ``None``: then call :meth:`acquire`, which waits or refuses.
        """
        now = self._now
        state = self._keys.get(deployment.name) or self._state(deployment)
        if now is None:
            return self._unlimited_now(state, input_tokens, output_tokens)
        permit = Permit(state.key, next(_entries), state.settings, [])
        try:
            wait, _ = self._try_now(now, state, permit, input_tokens, output_tokens)
        except StoreUnavailableError:
            return None
        if wait > 0:
            return None
        state.admitted += 1
        pacer = state.pacer
        if pacer.requests_left is not None or pacer.tokens_left is not None:
            pacer.sent(input_tokens + output_tokens, self.clock())
        return permit

    def _unlimited_now(self, state: _KeyState, input_tokens: int, output_tokens: int) -> Permit | None:
        """A shared store's admission when the key has no limits and its cool-down is known in-process.

        Nothing is taken from the store then (no round trip, no task); ``None`` when the store must be asked.
        """
        if state.checks:
            return None
        cooldown = self.store.cooldown_known(state.cooldown_key)
        if cooldown is None or cooldown > 0:
            return None
        pacer = state.pacer
        if pacer.requests_left is not None or pacer.tokens_left is not None:  # headers seen: no call otherwise
            if self._paced(state, input_tokens, output_tokens) > 0:
                return None
            pacer.sent(input_tokens + output_tokens, self.clock())
        state.admitted += 1
        return Permit(state.key, next(_entries), state.settings, [])

    async def acquire(self, deployment: DeploymentState, *, input_tokens: int = 0, output_tokens: int = 0,
                      model: str | None = None) -> Permit:
        """Admit one attempt, waiting (bounded, async) or raising :class:`RateLimitError` as configured."""
        state = self._state(deployment)
        settings = state.settings
        key = deployment.name
        now = self._now
        # Entry ids only need to be unique across processes when the store is shared.
        permit = Permit(key, f"{_PROCESS}.{next(_entries)}" if self.store.shared else next(_entries), settings)
        started = self.clock()
        waited = False
        while True:
            try:
                if now is not None:
                    wait, reason = self._try_now(now, state, permit, input_tokens, output_tokens)
                elif state.checks:
                    wait, reason = await self._try_shielded(state, permit, input_tokens, output_tokens)
                else:  # nothing to take from the store, so nothing a cancelled caller could leave held
                    wait, reason = await self._try(state, permit, input_tokens, output_tokens)
            except StoreUnavailableError as exc:
                self._store_failed(exc, key)
                if self.fail_mode == "open":
                    permit.holds.clear()
                    state.admitted += 1
                    return permit
                state.refused += 1
                # The store's own typed error, not a rate limit: nothing was over a limit, and another deployment
                # would meet the same store.
                raise StateStoreError(f"rate-limit store unreachable and fail_mode is 'closed': {exc}",
                                      store=exc.store, operation=exc.operation or "rate limit",
                                      provider=deployment.provider_name, model=model) from exc
            if wait <= 0:
                state.admitted += 1
                pacer = state.pacer
                if pacer.requests_left is not None or pacer.tokens_left is not None:
                    pacer.sent(input_tokens + output_tokens, self.clock())
                if waited:
                    permit.waited = self.clock() - started
                return permit
            elapsed = self.clock() - started
            if settings.on_limit == "fail" or elapsed + wait > settings.max_wait:
                state.refused += 1
                state.last_refusal = reason
                # Not retryable on this deployment: the manager moves to the next candidate instead of waiting.
                raise RateLimitError(f"local rate limit for {key!r}: {reason}; retry in {wait:.2f}s",
                                     provider=deployment.provider_name, model=model, retry_after=wait,
                                     retryable=False)
            state.waits += 1
            state.waited += wait
            waited = True
            await asyncio.sleep(wait)

    async def _try_shielded(self, state: _KeyState, permit: Permit, input_tokens: int,
                            output_tokens: int) -> tuple[float, str]:
        # A shared store's acquisition is several round trips: a caller cancelled halfway must not leave the
        # holds it took in the store. The attempt runs to its end; what it took is then given back.
        trying = asyncio.ensure_future(self._try(state, permit, input_tokens, output_tokens))
        try:
            return await asyncio.shield(trying)
        except asyncio.CancelledError:
            def give_back(outcome: tuple[float, str]) -> Awaitable[None] | None:
                if outcome[0] > 0 or not permit.holds:
                    return None
                permit.done = True
                return self._guarded(self._give_back(permit.entry, permit.holds), permit.key)

            undo_if_abandoned(trying, give_back)
            raise

    # One attempt's admission is written twice, once per kind of store: _try_now over a synchronous store (the
    # default configuration's hot path: no await, window logs held) and _try over the awaited operations of a
    # shared one. What does not touch the store (_paced, _amount, _give_back_now) is shared.

    def _paced(self, state: _KeyState, input_tokens: int, output_tokens: int) -> float:
        """How long the provider's rate-limit headers say to wait (0: send now)."""
        if state.settings.header_pacing:
            return state.pacer.delay(input_tokens + output_tokens, self.clock())
        return 0.0

    def _try_now(self, store: SyncStateStore, state: _KeyState, permit: Permit, input_tokens: int,
                 output_tokens: int) -> tuple[float, str]:
        cooldown = store.cooldown_remaining_now(state.cooldown_key)
        if cooldown > 0:
            return cooldown, _COOLING
        pacer = state.pacer
        if pacer.requests_left is not None or pacer.tokens_left is not None:  # headers seen: no call otherwise
            delay = self._paced(state, input_tokens, output_tokens)
            if delay > 0:
                return delay, _PACED
        checks = state.checks
        if not checks:
            return 0.0, ""
        entry = permit.entry
        holds = permit.holds
        windows = state.windows
        now = store.clock() if windows is not None else 0.0  # one reading for every window of this attempt
        index = 0
        for name, limit, counts, span, store_key, rate, burst in checks:
            amount = 1 if counts == "requests" else _amount(counts, input_tokens, output_tokens)
            if amount > 0:
                log = windows[index] if windows is not None else None
                if rate:
                    ok, wait = store.bucket_acquire_now(store_key, float(amount), rate, burst)
                elif log is not None:
                    ok, wait = log.acquire(now, entry, amount, limit, span)
                else:
                    ok, wait = store.window_acquire_now(store_key, entry, amount, limit, span)
                if not ok:
                    _give_back_now(store, entry, _holds(checks[:index], input_tokens, output_tokens))
                    holds.clear()
                    permit.slots = None
                    permit.entry = next(_entries)  # a fresh id for the next try: the old one may linger in windows
                    return max(wait, 0.001), f"{name} limit {limit} reached"
                if counts != "requests":
                    holds.append((counts, store_key, amount, rate))
                elif permit.slots is None:
                    permit.slots = [(counts, store_key, amount, rate)]
                else:
                    permit.slots.append((counts, store_key, amount, rate))
            index += 1
        return 0.0, ""

    async def _try(self, state: _KeyState, permit: Permit, input_tokens: int,
                   output_tokens: int) -> tuple[float, str]:
        store = self.store
        cooldown = await store.cooldown_remaining(state.cooldown_key)
        if cooldown > 0:
            return cooldown, _COOLING
        pacer = state.pacer
        if pacer.requests_left is not None or pacer.tokens_left is not None:  # headers seen: no call otherwise
            delay = self._paced(state, input_tokens, output_tokens)
            if delay > 0:
                return delay, _PACED
        if not state.checks:
            return 0.0, ""
        taken: list[tuple[str, str, int, float]] = []
        entry = permit.entry
        try:
            for name, limit, counts, span, store_key, rate, burst in state.checks:
                amount = 1 if counts == "requests" else _amount(counts, input_tokens, output_tokens)
                if amount <= 0:
                    continue
                if rate:
                    ok, wait = await store.bucket_acquire(store_key, float(amount), rate, burst)
                else:
                    ok, wait = await store.window_acquire(store_key, entry, amount, limit, span)
                if not ok:
                    await self._give_back(entry, taken)
                    permit.entry = f"{_PROCESS}.{next(_entries)}" if self.store.shared else next(_entries)
                    return max(wait, 0.001), f"{name} limit {limit} reached"
                if wait == NOT_HELD:  # the store failed open: admitted, nothing held there to settle or refund
                    continue
                taken.append((counts, store_key, amount, rate))
        except BaseException:
            if taken:  # what the earlier checks took goes back, whatever stopped the later ones
                try:
                    await self._give_back(entry, taken)
                except Exception as exc:  # the store failing again: its own fail_mode has spoken
                    logger.warning("giving back a partial rate-limit acquisition failed: %s", exc)
            raise
        permit.holds = [hold for hold in taken if hold[0] != "requests"]
        permit.slots = [hold for hold in taken if hold[0] == "requests"] or None
        return 0.0, ""

    async def _give_back(self, entry: str, holds: list[tuple[str, str, int, float]]) -> None:
        store = self.store
        for _, store_key, amount, rate in holds:
            if rate:
                await store.bucket_adjust(store_key, -amount, rate)
            else:
                await store.window_adjust(store_key, entry, -amount)

    # -- after the call ---------------------------------------------------------------------------------------

    async def settle(self, permit: Permit, usage: TokenUsage | None) -> None:
        """Replace token reservations by the real usage (no usage: refund them)."""
        if self.settle_now(permit, usage) or permit.done:
            return
        permit.done = True
        if not permit.holds:
            return
        if usage is None:
            await self._guarded(self._give_back(permit.entry, permit.holds), permit.key)
            return
        store = self.store

        async def adjust() -> None:
            for counts, store_key, amount, rate in permit.holds:
                delta = _amount(counts, usage.input_tokens, usage.output_tokens) - amount
                if delta and rate:
                    await store.bucket_adjust(store_key, delta, rate)
                elif delta:
                    await store.window_adjust(store_key, permit.entry, delta)

        await self._guarded(adjust(), permit.key)

    def settle_now(self, permit: Permit, usage: TokenUsage | None) -> bool:
        """:meth:`settle` (``usage=None``: :meth:`refund`) without awaiting.

        False (nothing done) when the store is not synchronous.
        """
        store = self._now
        if store is None:
            return False
        if not permit.done:
            permit.done = True
            for counts, store_key, amount, rate in permit.holds:
                delta = (0 if usage is None else _amount(counts, usage.input_tokens, usage.output_tokens)) - amount
                if delta and rate:
                    store.bucket_adjust_now(store_key, delta, rate)
                elif delta:
                    store.window_adjust_now(store_key, permit.entry, delta)
        return True

    def unsend(self, permit: Permit) -> Awaitable[None] | None:
        """The attempt sent nothing upstream: give its request slots (rpm, rph) back, once."""
        slots, permit.slots = permit.slots, None
        if not slots:
            return None
        store = self._now
        if store is None:
            return self._guarded(self._give_back(permit.entry, slots), permit.key)
        _give_back_now(store, permit.entry, slots)
        return None

    async def refund(self, permit: Permit) -> None:
        """Give every token reservation back (the call failed)."""
        await self.settle(permit, None)

    async def report_error(self, deployment: DeploymentState, error: LLMError) -> None:
        """A provider error: a 429 cools the key down for its Retry-After (shared through the store)."""
        headers = getattr(error, "headers", None)
        state = self._state(deployment)
        if headers:
            self.observe(deployment, headers)
        if not isinstance(error, RateLimitError) or getattr(error, "status_code", None) is None:
            return
        settings = state.settings
        seconds = error.retry_after
        if seconds is None and headers:
            seconds = parse_rate_limit_headers(headers).retry_after
        seconds = min(settings.default_cooldown if seconds is None else seconds, settings.max_cooldown)
        if seconds <= 0:
            return
        state.cooldowns += 1
        await self._guarded(self.store.cooldown_set(f"rl:{deployment.name}", seconds), deployment.name)

    def observe(self, deployment: DeploymentState, headers: Mapping[str, str] | None) -> None:
        """Take in a response's rate-limit headers for pacing."""
        state = self._state(deployment)
        if not headers or not state.settings.header_pacing:
            return
        info = parse_rate_limit_headers(headers)
        if not info.empty:
            state.pacer.observe(info, self.clock())

    # -- store failures ---------------------------------------------------------------------------------------

    async def _guarded(self, work: Any, key: str) -> None:
        try:
            await work
        except StoreUnavailableError as exc:
            self._store_failed(exc, key)

    def _store_failed(self, exc: Exception, key: str) -> None:
        self.store_failures += 1
        self.last_store_error = str(exc)
        now = self.clock()
        if now - self._last_log >= 10.0:
            what = "ADMITTING requests without limits" if self.fail_mode == "open" else "REFUSING requests"
            logger.error("rate-limit state store unreachable (%s; %d more failures since the last report), "
                         "fail_mode=%s: %s for %r", exc, self._unlogged, self.fail_mode, what, key)
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1

    # -- inspection -------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Per deployment: limits, admissions, refusals, waits, cool-downs and the provider's last word."""
        now = self.clock()
        out: dict[str, Any] = {}
        for name, state in self._keys.items():
            s = state.settings
            out[name] = {
                "limits": {k: v for k, v in (("rpm", s.rpm), ("rph", s.rph), ("tpm", s.tpm),
                                             ("input_tpm", s.input_tpm), ("output_tpm", s.output_tpm),
                                             ("burst", s.burst)) if v is not None},
                "strategy": s.strategy, "on_limit": s.on_limit, "admitted": state.admitted,
                "refused": state.refused, "waits": state.waits, "waited_seconds": round(state.waited, 3),
                "cooldowns": state.cooldowns, "last_refusal": state.last_refusal,
                "provider_headers": state.pacer.snapshot(now),
            }
        return {"deployments": out, "store": self.store.status(), "fail_mode": self.fail_mode,
                "store_failures": self.store_failures, "degraded": self.last_store_error is not None,
                "last_store_error": self.last_store_error}


_COOLING = "the provider answered 429; cooling down"
_PACED = "the provider's rate-limit headers say the key is nearly exhausted"


def _amount(counts: str, input_tokens: int, output_tokens: int) -> int:
    """What one token check counts of an attempt (``tokens``, ``input`` or ``output``)."""
    if counts == "tokens":
        return input_tokens + output_tokens
    return input_tokens if counts == "input" else output_tokens


def _holds(checks: list[tuple[str, int, str, float, str, float, float]], input_tokens: int,
           output_tokens: int) -> list[tuple[str, str, int, float]]:
    """What ``checks`` took from the store for one attempt, as :attr:`Permit.holds` entries."""
    out = []
    for _, _, counts, _, store_key, rate, _ in checks:
        amount = 1 if counts == "requests" else _amount(counts, input_tokens, output_tokens)
        if amount > 0:
            out.append((counts, store_key, amount, rate))
    return out


def _give_back_now(store: SyncStateStore, entry: Any, holds: list[tuple[str, str, int, float]]) -> None:
    """:meth:`RateLimiter._give_back` over a synchronous store."""
    for _, store_key, amount, rate in holds:
        if rate:
            store.bucket_adjust_now(store_key, -amount, rate)
        else:
            store.window_adjust_now(store_key, entry, -amount)
