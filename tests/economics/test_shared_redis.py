"""Several real processes share one key's limit and one budget through a real redis-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from spoon_llm.config.models import BudgetConfig
from spoon_llm.costs import BudgetManager
from spoon_llm.middleware.defaults import budgets_from_config
from spoon_llm.state.redis import RedisStore
from spoon_llm.testing import ProviderSimulator, Reply, Usage

from ._spend_worker import spend

PROCESSES = 4
REQUESTS = 100


async def run_workers(data: dict[str, Any], env: dict[str, str]) -> list[dict[str, Any]]:
    start_at = time.time() + 3.0  # every worker has imported and built its manager by then
    return list(await asyncio.gather(*(spend(data, REQUESTS, env, start_at=start_at) for _ in range(PROCESSES))))


def config(sim: ProviderSimulator, redis_url: str, prefix: str, **settings: Any) -> dict[str, Any]:
    return {"providers": {"openai": {"api_key": "sk-test-shared-xxxxxxxxxxxx", "base_url": sim.openai_base_url,
                                     "model": "budget-model", "max_connections": 200, **settings.pop("openai", {})}},
            "pricing": {"budget-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}},
            # 400 requests at once from four processes on a small, busy machine: give Redis time (a call that
            # times out after the server applied it holds a slot no request uses, and the counts come out short).
            "state": {"backend": "redis", "url": redis_url, "key_prefix": prefix, "timeout": 10},
            "retry": {"max_retries": 0}, **settings}


async def test_four_processes_share_one_keys_60_rpm(sim: ProviderSimulator, redis_server: str, redis_prefix: str,
                                                    child_env: dict[str, str]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    data = config(sim, redis_server, redis_prefix, openai={"rpm": 60}, rate_limits={"on_limit": "fail"})
    results = await run_workers(data, child_env)
    assert not any(r["other"] for r in results)  # first: a failure other than the limit explains a short count
    assert sum(r["ok"] for r in results) == 60  # exactly the limit, across processes, within the window
    assert sum(r["rate_limited"] for r in results) == PROCESSES * REQUESTS - 60
    assert sim.request_count == 60
    assert all(r["status"]["rate_limit"]["store"]["backend"] == "redis" for r in results)


async def test_four_processes_share_one_budget(sim: ProviderSimulator, redis_server: str, redis_prefix: str,
                                               child_env: dict[str, str]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    # $0.01 a request: 50 fit. The processes are one application: they name its budget namespace.
    data = config(sim, redis_server, redis_prefix, budget={"limit": 0.5}, namespace="shared-app")
    results = await run_workers(data, child_env)
    assert sum(r["ok"] for r in results) == 50
    assert sum(r["budget"] for r in results) == PROCESSES * REQUESTS - 50
    assert sim.request_count == 50
    # Every process fired only the alerts it won: exactly one of each across the four.
    alerts = [a["threshold"] for r in results for a in r["status"]["budget"]["alerts"]]
    assert sorted(alerts) == [0.75, 0.9]
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        snapshot = (await BudgetManager(store, budgets_from_config(BudgetConfig(limit=0.5)),
                                       namespace="shared-app").snapshot())["global"]
    finally:
        await store.close()
    assert snapshot["spent"] == 0.5 and snapshot["reserved"] == 0  # never beyond the limit, nothing left held
