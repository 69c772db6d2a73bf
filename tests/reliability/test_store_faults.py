"""A shared state store failing in the middle of a request: what was held is given back, a reservation the store
never made is never settled against it, and a retry waits for the circuit like a first attempt.

The store is a real SQLite store whose chosen operations fail as a dropped connection does: through the store's
own ``fail_mode`` decision (``"open"``: admitted without a hold; ``"closed"``: a ``StateStoreError``).
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.costs.budgets import Budget, BudgetManager
from spoon_llm.errors import LLMError, StateStoreError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import build_middleware, close_middleware
from spoon_llm.state.sqlite import SQLiteStore
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage


class _Dropping(SQLiteStore):
    """Fails ``reserve`` on keys containing ``reserve_on``, and the ``window_call``-th ``window_acquire``."""

    def __init__(self, path: Path, *, reserve_on: str | None = None, window_call: int | None = None,
                 fail_mode: str = "closed") -> None:
        super().__init__(path)
        self.fail_mode = fail_mode  # type: ignore[assignment]
        self.reserve_on = reserve_on
        self.window_call = window_call
        self.window_calls = 0

    async def reserve(self, key: str, amount: int, limit: int, *, also: Any = None,
                      ttl: float | None = None) -> tuple[bool, int]:
        if self.reserve_on is not None and self.reserve_on in key:
            self.reserve_on = None  # once
            return self.decide("reserve", ConnectionResetError("connection dropped"), (True, -1))
        return await super().reserve(key, amount, limit, also=also, ttl=ttl)

    async def window_acquire(self, key: str, entry: str, amount: int, limit: int,
                             window: float) -> tuple[bool, float]:
        self.window_calls += 1
        if self.window_calls == self.window_call:
            return self.decide("window_acquire", ConnectionResetError("connection dropped"), (True, -1.0))
        return await super().window_acquire(key, entry, amount, limit, window)


async def test_a_reservation_that_failed_open_is_settled_without_a_phantom_hold(tmp_path: Path) -> None:
    store = _Dropping(tmp_path / "state.db", reserve_on="committed", fail_mode="open")
    budgets = BudgetManager(store, [Budget("global", 1000.0)])
    try:
        reservation = await budgets.reserve(108.0, provider="openai")  # the store failed: admitted, nothing held
        assert reservation.slots == [] and [s.key for s in reservation.unheld] == ["global"]
        await budgets.settle(reservation, 20.0)
        await budgets.flush()
        global_budget = (await budgets.snapshot())["global"]
        # The 20 spent are counted whole; nothing is taken off for the 108 that were never held.
        assert (global_budget["spent"], global_budget["reserved"], global_budget["remaining"]) == (20.0, 0.0, 980.0)
    finally:
        await store.close()


async def test_a_partial_reservation_is_given_back_when_a_later_budget_fails(tmp_path: Path) -> None:
    store = _Dropping(tmp_path / "state.db", reserve_on="provider:openai")
    budgets = BudgetManager(store, [Budget("global", 1000.0),
                                    Budget("provider:openai", 500.0, scope="provider", match="openai")])
    try:
        with pytest.raises(StateStoreError):
            await budgets.reserve(108.0, provider="openai")
        await budgets.flush()
        snapshot = await budgets.snapshot()
        assert snapshot["global"]["reserved"] == 0.0 and snapshot["provider:openai"]["reserved"] == 0.0
    finally:
        await store.close()


def _manager(sim: ProviderSimulator, store: SQLiteStore, **section: Any) -> LLMManager:
    config = ConfigurationManager({
        "providers": {"openai": {"api_key": "sk-test-store-faults-000001", "base_url": sim.openai_base_url,
                                 "model": "faults-model", **section}},
        "retry": {"max_retries": 0},
        "rate_limits": {"on_limit": "fail"},
    }, env={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LLMManager(config, middleware=build_middleware(config, store=store, ledger=store),
                          default_middleware=False)


async def test_a_rate_limit_slot_is_given_back_when_a_later_check_fails(tmp_path: Path) -> None:
    store = _Dropping(tmp_path / "state.db", window_call=2)  # the first request's tpm check (rpm comes first)
    async with ProviderSimulator() as sim:
        sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=5, output_tokens=5)))
        manager = _manager(sim, store, rpm=2, tpm=1_000_000)
        try:
            with pytest.raises(StateStoreError):
                await manager.chat("first", max_tokens=10)
            # Nothing was sent for it, so both slots of the minute are still there.
            assert (await manager.chat("second", max_tokens=10)).content == "ok"
            assert (await manager.chat("third", max_tokens=10)).content == "ok"
            assert len(sim.requests) == 2
        finally:
            await manager.cleanup()
            await close_middleware(manager.middleware)
            await store.close()


async def test_a_retry_after_backoff_waits_for_the_circuit_like_a_first_attempt() -> None:
    async with ProviderSimulator() as sim:
        manager = LLMManager(ConfigurationManager({
            "providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url,
                                      "api_key": "sk-test-circuit-primary-0001", "model": "m-primary"}},
            "retry": {"max_retries": 1, "initial_backoff": 2.0, "jitter": False},
        }, env={}), middleware=[], default_middleware=False,
            circuit_breaker={"failure_threshold": 2, "cooldown": 30.0})
        try:
            sim.fault("openai", Fault.unavailable(), times=2)
            first = asyncio.create_task(manager.chat("A"))  # fails once, then waits 2 s to retry
            while not sim.requests:
                await asyncio.sleep(0.01)
            with pytest.raises(LLMError):
                await manager.chat("B")  # the second failure in a row: the circuit opens
            assert manager.get_provider_status()["primary"]["circuit"]["state"] == "open"
            with pytest.raises(LLMError):
                await first  # its retry is not sent to a deployment whose circuit is open
            assert len(sim.requests) == 2
            assert manager.get_provider_status()["primary"]["circuit"]["state"] == "open"
        finally:
            await manager.cleanup()
