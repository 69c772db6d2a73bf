"""A key's spend lands in the store ``[state]`` names for it, so every replica and ``spoon-llm keys show`` see it.

With memory counters the spend still goes to the SQLite ledger (``ledger = "auto"``), and ``keys show`` reads what
the gateway wrote; with Redis state two replicas share one budget: the spend recorded is the sum of the costs they
reported, nothing stays reserved, and once it is used up both refuse with 402.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, gateway_config, gateway_of_its_own, redis_state, running_gateways

MASTER = "sk-master-spend-0123456789"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}


def keys(gateway: Gateway, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", *args, "--config",
                             str(Path(gateway.state_dir) / "gateway.toml")], capture_output=True, text=True,
                            timeout=120, env=_env())
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def memory_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of_its_own(simulators, tmp_path_factory, "spend-memory", master_key=MASTER) as running:
        yield running


@pytest.fixture(scope="module")
def replicas(simulators: tuple[ProviderSimulator, ProviderSimulator], redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Gateway]]:
    sim, slow = simulators
    prefix = f"spend{os.getpid()}"
    dirs = [tmp_path_factory.mktemp(f"spend-replica{index}") for index in range(2)]
    with running_gateways((redis_state(gateway_config(sim, slow, state_dir, master_key=MASTER), redis_url, prefix),
                           state_dir) for state_dir in dirs) as running:
        yield running


def test_memory_counters_still_record_spend_in_the_sqlite_ledger_keys_show_reads(memory_gateway: Gateway) -> None:
    key = json.loads(keys(memory_gateway, "create", "ledgered", "--budget", "5", "--json"))["key"]
    with openai.OpenAI(api_key=key, base_url=memory_gateway.url + "/v1", max_retries=0) as client:
        costs = []
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(
                model="fast", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
            costs.append(float(raw.headers["x-spoon-cost-usd"]))
    spend = json.loads(keys(memory_gateway, "show", "ledgered", "--json"))["spend"]
    assert spend is not None
    assert spend["spent"] == pytest.approx(sum(costs), rel=1e-6, abs=1e-9) and sum(costs) > 0
    assert spend["reserved"] == 0


async def _post(client: httpx2.AsyncClient, gateway: Gateway, key: str) -> tuple[int, float]:
    response = await client.post(gateway.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                 json={"model": "fast", "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "hi"}]})
    return response.status_code, float(response.headers.get("x-spoon-cost-usd", 0.0))


async def test_two_replicas_share_one_budget_through_redis(replicas: list[Gateway]) -> None:
    # A tiny budget: a handful of requests' worth, so the 60 below overrun it.
    key = json.loads(keys(replicas[0], "create", "shared-budget", "--budget", "0.0001", "--json"))["key"]
    limits = httpx2.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
        results = await asyncio.gather(*(_post(client, replicas[i % 2], key) for i in range(60)))
        statuses = Counter(status for status, _ in results)
        assert set(statuses) <= {200, 402} and statuses[200] > 0 and statuses[402] > 0
        # What settled may leave room for a few more; once a replica refuses, the other refuses as well.
        for index in range(40):
            status, cost = await _post(client, replicas[index % 2], key)
            results.append((status, cost))
            if status == 402:
                assert (await _post(client, replicas[(index + 1) % 2], key))[0] == 402
                break
        else:
            raise AssertionError("the budget was never used up")
    spend = json.loads(keys(replicas[1], "show", "shared-budget", "--json"))["spend"]
    assert spend["reserved"] == 0
    assert spend["spent"] == pytest.approx(sum(cost for status, cost in results if status == 200), rel=1e-6)
    assert spend["spent"] <= 0.0001 + 1e-12
