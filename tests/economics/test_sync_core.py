"""Budgets and limits are written once: a synchronous core over a store whose state lives in this process, used by
the awaiting methods too, and the awaited store operations for shared stores. The same sequence of operations must
leave the same state and make the same decisions on every kind of store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spoon_llm.config.models import ProviderConfig
from spoon_llm.costs import Budget, BudgetManager
from spoon_llm.errors import BudgetExceededError, RateLimitError
from spoon_llm.ratelimit import LimitSettings, RateLimiter
from spoon_llm.state import MemoryStore, StateStore
from spoon_llm.state.base import sync_store
from spoon_llm.state.sqlite import SQLiteStore
from spoon_llm.types import TokenUsage


def _store(kind: str, tmp_path: Path) -> StateStore:
    return MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "state.db")


async def _budget_story(budgets: BudgetManager) -> list[Any]:
    seen: list[Any] = []
    first = await budgets.reserve(0.4, provider="p")
    await budgets.settle(first, 0.3)
    second = await budgets.reserve(0.5, provider="p")
    await budgets.release(second)
    await budgets.release(second)  # released once only
    third = await budgets.reserve(0.6, provider="p", request_id="r3")
    await budgets.settle(third, 0.65)  # crosses 0.75 and 0.9 at once
    await budgets.settle(third, 0.65)  # settled once only
    try:
        await budgets.reserve(0.1, provider="p")
    except BudgetExceededError as exc:
        seen.append(("refused", exc.budget, round(exc.spent or 0.0, 9), round(exc.reserved or 0.0, 9)))
    seen.append({k: round(v, 9) if isinstance(v, float) else v
                 for k, v in (await budgets.snapshot())["global"].items() if k != "period_id"})
    seen.append([(a.threshold, a.level, round(a.spent, 9), a.request_id) for a in budgets.alerts])
    return seen


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_budget_operations_decide_alike_on_every_store(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    try:
        assert (sync_store(store) is not None) == (kind == "memory")
        story = await _budget_story(BudgetManager(store, [Budget("global", 1.0, thresholds=(0.75, 0.9))]))
    finally:
        await store.close()
    assert story == [
        ("refused", "global", 0.95, 0.0),
        {"limit": 1.0, "period": "total", "scope": "global", "spent": 0.95, "reserved": 0.0,
         "remaining": pytest.approx(0.05), "percent": pytest.approx(95.0)},
        [(0.75, "warning", 0.95, "r3"), (0.9, "critical", 0.95, "r3")],
    ]


async def test_the_synchronous_core_settles_and_alerts_without_the_awaiting_path() -> None:
    budgets = BudgetManager(MemoryStore(), [Budget("global", 1.0)])
    held = budgets.reserve_now(0.8, "p", request_id="r1")
    assert held is not None
    assert budgets.settle_now(held, 0.8) is True  # an alert to fire no longer needs the awaiting path
    assert [(a.threshold, a.level) for a in budgets.alerts] == [(0.75, "warning")]
    again = budgets.reserve_now(0.05, "p")
    assert again is not None and budgets.settle_now(again, 0.05) is True
    assert [(a.threshold, a.level) for a in budgets.alerts] == [(0.75, "warning")]  # once per crossing
    assert budgets.status()["budgets"]["global"]["spent"] == pytest.approx(0.85)


async def test_the_synchronous_core_reports_it_cannot_serve_a_shared_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        budgets = BudgetManager(store, [Budget("global", 1.0)])
        assert budgets.reserve_now(0.1, "p") is None
        held = await budgets.reserve(0.1, provider="p")
        assert budgets.settle_now(held, 0.1) is False and budgets.release_now(held) is False
        await budgets.settle(held, 0.1)
        assert budgets.settle_now(held, 0.1) is True  # settled: nothing left to do anywhere
        assert await budgets.spent("global") == pytest.approx(0.1)
    finally:
        await store.close()


def _deployment() -> Any:
    """The parts of a DeploymentState the limiter reads."""
    return SimpleNamespace(name="d", provider_name="openai", provider_type="openai", model="m", key_alias=None,
                           config=ProviderConfig(name="openai", model="m"))


async def _limiter_story(limiter: RateLimiter) -> list[Any]:
    deployment = _deployment()
    seen: list[Any] = []
    first = await limiter.acquire(deployment, input_tokens=300, output_tokens=300)
    await limiter.settle(first, TokenUsage(input_tokens=300, output_tokens=100))  # 400 of 1,000 used
    second = await limiter.acquire(deployment, input_tokens=200, output_tokens=200)  # 800
    await limiter.refund(second)  # back to 400
    unsent = limiter.unsend(second)  # its request slot too
    if unsent is not None:
        await unsent
    third = await limiter.acquire(deployment, input_tokens=300, output_tokens=300)  # 1,000: the limit
    seen.append(len(third.holds))
    try:
        await limiter.acquire(deployment, input_tokens=1, output_tokens=0)
    except RateLimitError as exc:
        seen.append(("refused", "tpm limit" in exc.message))
    await limiter.settle(third, TokenUsage(input_tokens=300, output_tokens=0))  # 700
    fourth = await limiter.acquire(deployment, input_tokens=200, output_tokens=100)  # 1,000 again
    seen.append(fourth.done)
    status = limiter.status()["deployments"]["d"]
    seen.append((status["admitted"], status["refused"]))
    return seen


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_limiter_operations_decide_alike_on_every_store(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path)
    settings = LimitSettings(rpm=3, tpm=1_000, on_limit="fail", strategy="sliding_window")
    try:
        story = await _limiter_story(RateLimiter(store, settings=settings))
    finally:
        await store.close()
    assert story == [1, ("refused", True), False, (4, 1)]
