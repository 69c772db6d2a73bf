"""Cost tracking: totals by provider, model, deployment and tags, history, exports, and the manager's status."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.costs import CostTracker, UsageRecord
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import CostMiddleware, build_middleware, close_middleware
from spoon_llm.middleware.budget import BudgetMiddleware
from spoon_llm.middleware.rate_limit import RateLimitMiddleware
from spoon_llm.pricing import PriceBook
from spoon_llm.state.sqlite import SQLiteStore
from spoon_llm.testing import ProviderSimulator, Reply, Usage

HOUR = 3600.0


def record(ts: float, provider: str, model: str, cost: float, **extra: object) -> UsageRecord:
    return UsageRecord(ts=ts, provider=provider, model=model, deployment=f"{provider}#k", key_alias="k",
                       input_tokens=100, output_tokens=10, cost=cost, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def tracker() -> CostTracker:
    t = CostTracker()
    await t.record(record(0.0, "openai", "gpt-4o", 0.5, tags={"user": "ann", "team": "a"}))
    await t.record(record(10.0, "openai", "gpt-4o-mini", 0.25, tags={"user": "bob", "team": "a"}))
    await t.record(record(HOUR + 5, "anthropic", "claude-sonnet-4-5", 1.0, tags={"user": "ann"}))
    await t.record(record(2 * HOUR, "openai", "mystery", 0.0, unpriced=True))
    return t


async def test_totals_by_every_dimension(tracker: CostTracker) -> None:
    assert tracker.get_total_cost() == 1.75
    assert tracker.get_total_cost(provider="openai") == 0.75
    assert tracker.get_total_cost(model="claude-sonnet-4-5") == 1.0
    assert tracker.get_total_cost(deployment="anthropic#k") == 1.0
    assert tracker.get_total_cost(tags={"user": "ann"}) == 1.5
    assert tracker.get_total_cost(provider="openai", tags={"team": "a"}) == 0.75
    assert tracker.get_total_cost(since=HOUR) == 1.0
    stats = tracker.get_usage_stats()
    assert stats["gpt-4o"] == {"requests": 1, "input_tokens": 100, "output_tokens": 10, "total_tokens": 110,
                               "cached_input_tokens": 0, "reasoning_tokens": 0, "cost": 0.5,
                               "unpriced_requests": 0}
    assert stats["mystery"]["unpriced_requests"] == 1
    assert tracker.get_usage_by("key")["openai#k"]["requests"] == 3
    assert tracker.get_usage_by("tag")["user:ann"]["cost"] == 1.5


async def test_history_is_bucketed_in_utc(tracker: CostTracker) -> None:
    hourly = tracker.history("hour")
    assert [(row["start"], row["requests"], row["cost"]) for row in hourly] == [
        ("1970-01-01T00:00:00+00:00", 2, 0.75), ("1970-01-01T01:00:00+00:00", 1, 1.0),
        ("1970-01-01T02:00:00+00:00", 1, 0.0)]
    by_provider = tracker.history("day", by="provider")
    assert {(r["provider"], r["cost"]) for r in by_provider} == {("openai", 0.75), ("anthropic", 1.0)}
    assert len(tracker.history("month")) == 1


async def test_json_and_csv_exports(tracker: CostTracker, tmp_path: Path) -> None:
    data = json.loads(tracker.export_json(str(tmp_path / "u.json")))
    assert len(data) == 4 and data[0]["tags"] == {"user": "ann", "team": "a"}
    assert json.loads((tmp_path / "u.json").read_text()) == data
    rows = list(csv.DictReader(io.StringIO(tracker.export_csv(provider="openai"))))
    assert [r["model"] for r in rows] == ["gpt-4o", "gpt-4o-mini", "mystery"]
    assert rows[0]["tag.user"] == "ann" and rows[2]["tag.user"] == "" and rows[2]["unpriced"] == "True"


async def test_ledger_in_sqlite_rebuilds_totals(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    try:
        first = CostTracker(store)
        await first.record(record(1.0, "openai", "gpt-4o", 0.5))
        await first.record(record(2.0, "openai", "gpt-4o", 0.25))
        again = CostTracker(store)
        assert await again.load() == 2
        assert again.get_total_cost() == 0.75 and again.get_usage_stats()["gpt-4o"]["requests"] == 2
    finally:
        await store.close()


async def test_every_response_carries_its_cost_and_the_tracker_sees_it(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1000, output_tokens=200, cached_tokens=400)))
    cost = CostMiddleware(CostTracker(), PriceBook())
    manager = make_manager({"openai": {"model": "gpt-4o"}}, middleware=[cost])
    try:
        response = await manager.chat("hi", tags={"user": "ann", "app": "demo"})
        stream = [c async for c in manager.chat_stream("hi", tags={"user": "bob"})]
    finally:
        await manager.cleanup()
    expected = (600 * 2.5 + 400 * 1.25 + 200 * 10) / 1e6
    assert response.cost is not None and response.cost.total_cost == pytest.approx(expected)
    assert response.cost.source is not None and response.cost.source.startswith("genai-prices")
    assert stream[-1].metadata["cost"].total_cost == pytest.approx(expected)
    assert cost.tracker.get_total_cost() == pytest.approx(2 * expected)
    assert cost.tracker.get_total_cost(tags={"user": "ann"}) == pytest.approx(expected)
    assert cost.tracker.get_usage_stats()["gpt-4o"]["requests"] == 2
    status = manager.get_status()["middleware"]["cost"]
    assert status["total_cost"] == pytest.approx(2 * expected) and status["by_provider"] == {
        "openai": pytest.approx(2 * expected)}


async def test_unpriced_models_are_marked_on_the_response(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    cost = CostMiddleware()
    manager = make_manager({"openai": {"model": "house-model-7"}}, middleware=[cost])
    try:
        response = await manager.chat("hi")
    finally:
        await manager.cleanup()
    assert response.cost is not None and response.cost.unpriced and response.cost.source == "unpriced"
    assert cost.tracker.totals.unpriced_requests == 1


async def test_build_middleware_from_configuration(sim: ProviderSimulator, tmp_path: Path) -> None:
    data = {"providers": {"openai": {"api_key": "sk-test-build-xxxxxxxxxxxxxx", "base_url": sim.openai_base_url,
                                     "model": "gpt-4o", "rpm": 100, "tpm": 100_000}},
            "budget": {"limit": 5.0, "per_provider": {"openai": 2.0}, "per_tag": {"team:ml": 1.0}},
            "pricing": {"gpt-4o": {"input_per_1m": 1.0, "output_per_1m": 2.0}},
            "rate_limits": {"strategy": "token_bucket", "on_limit": "fail"},
            "state": {"backend": "memory", "ledger": "sqlite", "path": str(tmp_path / "x.db")}}
    config = ConfigurationManager(data, env={})
    chain = build_middleware(config)
    assert [m.name for m in chain] == ["budget", "rate_limit", "cost"]
    budget, limiter, cost = chain
    assert isinstance(budget, BudgetMiddleware) and isinstance(limiter, RateLimitMiddleware)
    assert isinstance(cost, CostMiddleware)
    assert sorted(budget.budgets.budgets) == ["global", "provider:openai", "tag:team=ml"]
    assert budget.budgets.store.name == "sqlite" and limiter.limiter.store.name == "memory"
    manager = LLMManager(config, middleware=chain)
    try:
        response = await manager.chat("hi", tags={"team": "ml"})
    finally:
        await manager.cleanup()
        await close_middleware(chain)
    assert response.cost is not None and response.cost.source == "config override: pricing.gpt-4o"
    status = manager.get_status()["middleware"]
    assert set(status) == {"budget", "rate_limit", "cost"}
    assert status["rate_limit"]["deployments"]["openai"]["limits"] == {"rpm": 100, "tpm": 100_000}
    assert status["budget"]["budgets"]["tag:team=ml"]["spent"] == pytest.approx(response.cost.total_cost)


def test_default_chain_has_no_budget_guard_and_keeps_state_in_memory() -> None:
    chain = build_middleware(ConfigurationManager({}, env={}))
    assert [m.name for m in chain] == ["rate_limit", "cost"]
    cost = chain[-1]
    assert isinstance(cost, CostMiddleware) and cost.tracker.ledger is None and cost.owns_stores[0].name == "memory"


def test_the_fast_cost_is_the_validated_cost() -> None:
    from spoon_llm.pricing.book import priced_cost
    from spoon_llm.types import CostInfo, LLMResponse

    fast = priced_cost(0.125, 2, "EUR", "config override: pricing.m")  # an int price becomes a float, as validated
    slow = CostInfo(input_cost=0.125, output_cost=2, total_cost=2.125, currency="EUR",
                    source="config override: pricing.m")
    assert fast == slow and repr(fast) == repr(slow) and fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json() and type(fast.output_cost) is float
    fast.total_cost = 3.0  # still an ordinary model
    response = LLMResponse(cost=fast)
    assert LLMResponse.model_validate_json(response.model_dump_json()).cost == fast
