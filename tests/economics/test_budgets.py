"""Budgets through the real request path: concurrency, alerts, scopes, periods, run-time changes, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.costs import Budget, BudgetAlert, BudgetManager
from spoon_llm.errors import BudgetExceededError, StateStoreError
from spoon_llm.events import Event
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import BudgetMiddleware, CostMiddleware, build_middleware, close_middleware
from spoon_llm.state import MemoryStore
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

from ._spend_worker import spend

# $100 per million output tokens, input free: 100 output tokens cost exactly $0.01.
PRICING = {"budget-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}}
PER_REQUEST = 0.01


def economics(manager: LLMManager, **settings: Any) -> list[Any]:
    """Build the configured chain for ``manager`` (state in memory unless told otherwise) and attach it."""
    data = {"pricing": PRICING, "state": {"ledger": "memory"}, **settings}
    # The provider sections its per-provider budgets name must exist (a budget on no section would never apply).
    named = settings.get("budget", {}).get("per_provider", {})
    providers = {name: {"api_key": "sk-x-xxxxxxxxxxxxxxx"} for name in ("x", *named)}
    config = ConfigurationManager({"providers": providers, **data}, env={})
    chain = build_middleware(config, events=manager.events)
    for middleware in chain:
        manager.add_middleware(middleware)
    return chain


async def test_500_concurrent_requests_against_a_budget_that_fits_100(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=12, output_tokens=100)))
    manager = make_manager({"openai": {"model": "budget-model"}})
    events: list[Event] = []
    manager.add_observer(lambda e: events.append(e) if e.kind == "budget_alert" else None)
    chain = economics(manager, budget={"limit": 100 * PER_REQUEST})
    guard = chain[0]
    assert isinstance(guard, BudgetMiddleware)
    alerts: list[BudgetAlert] = []
    guard.budgets.on_alert(alerts.append)
    try:
        results = await asyncio.gather(*(manager.chat("hi", max_tokens=100) for _ in range(500)),
                                       return_exceptions=True)
    finally:
        await manager.cleanup()
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) == 100 and len(refused) == 400
    assert sim.request_count == 100  # refused before they reached the provider
    snapshot = (await guard.budgets.snapshot())["global"]
    assert snapshot["spent"] == pytest.approx(1.0, abs=1e-12) and snapshot["reserved"] == 0
    assert [(a.threshold, a.level) for a in alerts] == [(0.75, "warning"), (0.9, "critical")]
    assert [e.data["threshold"] for e in events] == [0.75, 0.9]
    assert refused[0].budget == "global" and refused[0].limit == 1.0
    assert all(r.cost is not None and r.cost.total_cost == pytest.approx(PER_REQUEST) for r in ok)
    await close_middleware(chain)


async def test_spend_never_exceeds_the_limit_by_more_than_the_in_flight_reservation(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    # Reservations (max_tokens=300) are 3x the real cost: fewer run at once, none overshoots.
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=5, output_tokens=100)))
    manager = make_manager({"openai": {"model": "budget-model"}})
    chain = economics(manager, budget={"limit": 0.5})
    peak = 0.0
    budgets = chain[0].budgets

    async def one() -> bool:
        nonlocal peak
        try:
            await manager.chat("hi", max_tokens=300)
        except BudgetExceededError:
            return False
        finally:
            peak = max(peak, (await budgets.snapshot())["global"]["spent"])
        return True

    try:
        while any(await asyncio.gather(*(one() for _ in range(100)))):
            pass  # waves of 100: each uses what the previous one settled back, until nothing more fits
    finally:
        await manager.cleanup()
    final = (await budgets.snapshot())["global"]
    assert final["spent"] <= 0.5 + 1e-12 and peak <= 0.5 + 1e-12
    assert final["spent"] >= 0.5 - 3 * PER_REQUEST - 1e-9  # used up to the last reservation that still fits
    assert final["reserved"] == 0


async def test_zero_cost_deployments_stay_allowed_when_the_budget_is_spent(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    manager = make_manager({"openai": {"model": "budget-model"},
                            "local": {"type": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct"}})
    chain = economics(manager, budget={"limit": 0.0})
    try:
        with pytest.raises(BudgetExceededError):
            await manager.chat("hi", provider="openai", fallback=False, max_tokens=10)
        response = await manager.chat("hi", provider="local", fallback=False)
        assert response.cost is not None and response.cost.total_cost == 0 and not response.cost.unpriced
    finally:
        await manager.cleanup()
    await close_middleware(chain)


async def test_provider_and_tag_budgets(sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    manager = make_manager({"openai": {"model": "budget-model"}, "backup": {"model": "budget-model"}})
    economics(manager, budget={"per_provider": {"openai": 0.02}, "per_tag": {"user": 0.03, "team:research": 1.0}})
    try:
        for _ in range(2):
            await manager.chat("hi", provider="openai", fallback=False, max_tokens=100, tags={"user": "ann"})
        with pytest.raises(BudgetExceededError) as refused:
            await manager.chat("hi", provider="openai", fallback=False, max_tokens=100, tags={"user": "bob"})
        assert refused.value.budget == "provider:openai"
        await manager.chat("hi", provider="backup", fallback=False, max_tokens=100, tags={"user": "ann"})
        with pytest.raises(BudgetExceededError) as per_user:
            await manager.chat("hi", provider="backup", fallback=False, max_tokens=100, tags={"user": "ann"})
        assert per_user.value.budget == "tag:user=ann"
        await manager.chat("hi", provider="backup", fallback=False, max_tokens=100,
                           tags={"user": "bob", "team": "research"})
        status = manager.get_status()["middleware"]["budget"]["budgets"]
        assert status["tag:user=ann"]["spent"] == pytest.approx(0.03)
        assert status["tag:team=research"]["spent"] == pytest.approx(0.01)
    finally:
        await manager.cleanup()


async def test_failed_calls_release_their_reservation_and_streams_settle(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    sim.script("openai", Reply(text="streamed answer", usage=Usage(input_tokens=3, output_tokens=100)))
    sim.fault("openai", Fault.server_error())
    manager = make_manager({"openai": {"model": "budget-model"}})
    chain = economics(manager, budget={"limit": 1.0})
    try:
        with pytest.raises(Exception):  # noqa: B017 - any provider failure
            await manager.chat("hi", fallback=False, max_tokens=100)
        snapshot = (await chain[0].budgets.snapshot())["global"]
        assert snapshot["spent"] == 0 and snapshot["reserved"] == 0
        chunks = [c async for c in manager.chat_stream("hi", max_tokens=100)]
        assert chunks[-1].metadata["cost"].total_cost == pytest.approx(PER_REQUEST)
        snapshot = (await chain[0].budgets.snapshot())["global"]
        assert snapshot["spent"] == pytest.approx(PER_REQUEST) and snapshot["reserved"] == 0
    finally:
        await manager.cleanup()


async def test_budget_can_change_at_run_time(sim: ProviderSimulator,
                                             make_manager: Callable[..., LLMManager]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    manager = make_manager({"openai": {"model": "budget-model"}})
    chain = economics(manager, budget={"limit": 0.01})
    budgets: BudgetManager = chain[0].budgets
    try:
        await manager.chat("hi", max_tokens=100)
        with pytest.raises(BudgetExceededError):
            await manager.chat("hi", max_tokens=100)
        budgets.set_limit("global", 0.02)
        await budgets.rearm("global")
        await manager.chat("hi", max_tokens=100)
        assert manager.get_status()["middleware"]["budget"]["budgets"]["global"]["limit"] == 0.02
    finally:
        await manager.cleanup()


async def test_daily_and_monthly_periods_roll_over() -> None:
    now = [1_750_000_000.0]  # 2025-06-15 UTC
    store = MemoryStore()
    budgets = BudgetManager(store, [Budget("global", 1.0, "daily"), Budget("m", 1.5, "monthly")],
                            clock=lambda: now[0])
    hold = await budgets.reserve(0.8, provider="p")
    await budgets.settle(hold, 0.8)
    with pytest.raises(BudgetExceededError):
        await budgets.reserve(0.5, provider="p")
    now[0] += 86_400  # the next day: a fresh daily budget, the same monthly one
    hold = await budgets.reserve(0.5, provider="p")
    await budgets.settle(hold, 0.5)
    status = budgets.status()["budgets"]
    assert status["global"]["spent"] == pytest.approx(0.5) and status["global"]["period_id"] == "2025-06-16"
    assert status["m"]["spent"] == pytest.approx(1.3) and status["m"]["period_id"] == "2025-06"
    with pytest.raises(BudgetExceededError) as refused:
        await budgets.reserve(0.3, provider="p")
    assert refused.value.budget == "m"
    assert (await budgets.snapshot())["global"]["reserved"] == 0  # the refused reservation held nothing


async def test_alerts_fire_once_per_crossing_and_go_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    budgets = BudgetManager(MemoryStore(), [Budget("global", 1.0)])
    for amount in (0.5, 0.3, 0.05, 0.1, 0.01):
        await budgets.settle(await budgets.reserve(amount, provider="p"), amount)
    assert [(a.threshold, round(a.spent, 2)) for a in budgets.alerts] == [(0.75, 0.8), (0.9, 0.95)]
    assert [r.levelname for r in caplog.records if r.name == "spoon_llm.budget"] == ["WARNING", "CRITICAL"]


async def test_spend_survives_a_restart_in_sqlite(sim: ProviderSimulator, tmp_path: Path,
                                                  child_env: dict[str, str]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    path = tmp_path / "ledger.db"
    data = {"providers": {"openai": {"api_key": "sk-test-restart-xxxxxxxxxxxx", "base_url": sim.openai_base_url,
                                     "model": "budget-model"}},
            "pricing": PRICING, "budget": {"limit": 0.07}, "state": {"ledger": "sqlite", "path": str(path)},
            "retry": {"max_retries": 0}}
    assert (await spend(data, 5, child_env, concurrency=1))["ok"] == 5

    # A new process (this one), the same file: the budget and the tracker know the earlier spend.
    config = ConfigurationManager(data, env={})
    chain = build_middleware(config)
    guard, cost = chain[0], chain[-1]
    assert isinstance(guard, BudgetMiddleware) and isinstance(cost, CostMiddleware)
    assert (await guard.budgets.snapshot())["global"]["spent"] == pytest.approx(5 * PER_REQUEST)
    assert await cost.tracker.load() == 5
    assert cost.tracker.get_total_cost() == pytest.approx(5 * PER_REQUEST)
    manager = LLMManager(config, middleware=chain)
    try:
        await manager.chat("hi", max_tokens=100)
        await manager.chat("hi", max_tokens=100)
        with pytest.raises(BudgetExceededError):
            await manager.chat("hi", max_tokens=100)
    finally:
        await manager.cleanup()
        await close_middleware(chain)


async def test_hourly_priced_deployments_are_charged_but_never_refused(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    manager = make_manager({"gpu": {"type": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "hourly_rate": 3600.0}})
    chain = economics(manager, budget={"limit": 0.0})
    try:
        first = await manager.chat("hi")
        await asyncio.sleep(0.01)
        second = await manager.chat("hi")
    finally:
        await manager.cleanup()
    assert first.cost is not None and second.cost is not None
    assert second.cost.source == "hourly_rate 3600.0/h (uptime, pro rata)" and second.cost.total_cost >= 0.01
    status = chain[0].budgets.status()["budgets"]["global"]
    assert status["spent"] == pytest.approx(first.cost.total_cost + second.cost.total_cost, abs=1e-9)


async def test_unpriced_models_hold_nothing_but_are_refused_once_the_budget_is_spent() -> None:
    budgets = BudgetManager(MemoryStore(), [Budget("global", 1.0)])
    held = await budgets.reserve(None, provider="p")
    assert held.amount == 0
    await budgets.settle(await budgets.reserve(1.0, provider="p"), 1.0)
    with pytest.raises(BudgetExceededError):
        await budgets.reserve(None, provider="p")


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_unreachable_budget_store_fails_closed_or_open(
        mode: str, sim: ProviderSimulator, make_manager: Callable[..., LLMManager],
        caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from spoon_llm.pricing import PriceBook
    from spoon_llm.state.redis import RedisStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    guard = BudgetMiddleware(BudgetManager(store, [Budget("global", 1.0)]), PriceBook(PRICING),
                             fail_mode=mode)  # type: ignore[arg-type]
    manager = make_manager({"openai": {"model": "budget-model"}}, middleware=[guard])
    try:
        if mode == "closed":
            with pytest.raises(StateStoreError, match="unreachable"):  # the store failed, not the budget
                await manager.chat("hi", max_tokens=10)
        else:
            await manager.chat("hi", max_tokens=10)
            assert any("WITHOUT budget checks" in r.getMessage() for r in caplog.records)
        assert guard.status()["store_failures"] >= 1
    finally:
        await manager.cleanup()
        await store.close()
