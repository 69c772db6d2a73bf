"""User middleware joins the configured chain instead of replacing it; settings nothing enforces are warned about."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.config.sources import ConfigWarning
from spoon_llm.errors import BudgetExceededError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import (
    BudgetMiddleware,
    CostMiddleware,
    Middleware,
    RateLimitMiddleware,
    build_middleware,
    close_middleware,
)
from spoon_llm.testing import ProviderSimulator, Reply, Usage

from .conftest import KEY

PRICING = {"priced-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}}  # 100 output tokens: $0.01


class CountTokens(Middleware):
    """The README's example middleware."""

    name = "count_tokens"

    def __init__(self) -> None:
        self.total = 0

    def after_attempt(self, ctx: Any, *, response: Any = None, usage: Any = None, error: Any = None) -> None:
        if usage is not None:
            self.total += usage.total_tokens


class SeesEverything(Middleware):
    name = "outer_probe"
    placement = "outer"


def config(sim: ProviderSimulator, **settings: Any) -> ConfigurationManager:
    return ConfigurationManager({"providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url,
                                                          "model": "priced-model"}},
                                 "pricing": PRICING, "state": {"ledger": "memory"}, **settings}, env={})


async def test_user_middleware_keeps_budgets_and_cost_accounting(sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=3, output_tokens=100)))
    counter = CountTokens()
    async with LLMManager(config(sim, budget={"limit": 0.000001}), middleware=[counter]) as manager:
        names = [m.name for m in manager.middleware]
        assert names == ["budget", "rate_limit", "cost", "count_tokens"]  # the documented order
        with pytest.raises(BudgetExceededError):
            await manager.chat("hi", max_tokens=100)  # the reservation alone is over the limit
    assert sim.request_count == 0 and counter.total == 0

    async with LLMManager(config(sim), middleware=[counter]) as manager:
        response = await manager.chat("hi", max_tokens=100)
    assert response.cost is not None and response.cost.total_cost == pytest.approx(0.01)
    assert counter.total == 103


async def test_outer_placement_goes_before_the_configured_chain(sim: ProviderSimulator) -> None:
    probe, inner = SeesEverything(), CountTokens()
    async with LLMManager(config(sim), middleware=[inner, probe]) as manager:
        assert [m.name for m in manager.middleware] == ["outer_probe", "rate_limit", "cost", "count_tokens"]


async def test_a_chain_built_with_build_middleware_is_not_doubled(sim: ProviderSimulator) -> None:
    cfg = config(sim)
    chain = build_middleware(cfg)
    async with LLMManager(cfg, middleware=chain) as manager:
        kinds = [type(m) for m in manager.middleware]
    assert kinds.count(CostMiddleware) == 1 and kinds.count(RateLimitMiddleware) == 1
    await close_middleware(chain)


async def test_default_middleware_false_runs_only_yours_and_warns_about_an_unenforced_budget(
        sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=3, output_tokens=100)))
    with pytest.warns(ConfigWarning, match=r"\[budget\] sets a spending limit but no BudgetMiddleware"):
        manager = LLMManager(config(sim, budget={"limit": 0.000001}), middleware=[CountTokens()],
                             default_middleware=False)
    async with manager:
        assert [m.name for m in manager.middleware] == ["count_tokens"]
        response = await manager.chat("hi", max_tokens=100)  # nothing enforces the budget, as warned
    assert response.cost is None and sim.request_count == 1


def test_unenforced_rate_limits_are_named(sim: ProviderSimulator) -> None:
    cfg = ConfigurationManager({"providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url,
                                                         "rpm": 5}}}, env={})
    with pytest.warns(ConfigWarning, match=r"providers openai set rate limits .* not enforced"):
        manager = LLMManager(cfg, middleware=[CountTokens()], default_middleware=False)
    assert not any(isinstance(m, RateLimitMiddleware) for m in manager.middleware)


async def test_no_warning_when_the_configured_chain_runs(sim: ProviderSimulator) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with LLMManager(config(sim, budget={"limit": 1.0}), middleware=[CountTokens()]) as manager:
            assert isinstance(manager.middleware[0], BudgetMiddleware)
