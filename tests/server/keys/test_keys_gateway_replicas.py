"""Two ``spoon-llm serve`` replicas sharing one redis-server: a key's rpm is exact across both under 400
requests sent at once (128 on the wire at a time), and a key revoked through the shared store is refused by both
within 1 s."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, gateway_config, redis_state, running_gateways

MASTER = "sk-master-replicas-0123456789"


@pytest.fixture(scope="module")
def replicas(simulators: tuple[ProviderSimulator, ProviderSimulator], redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Gateway]]:
    sim, slow = simulators
    prefix = f"replicas{os.getpid()}"
    dirs = [tmp_path_factory.mktemp(f"replica{index}") for index in range(2)]
    with running_gateways((redis_state(gateway_config(sim, slow, state_dir, master_key=MASTER), redis_url, prefix),
                           state_dir) for state_dir in dirs) as running:
        yield running


def keys(gateway: Gateway, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", *args, "--config",
                             str(Path(gateway.state_dir) / "gateway.toml")], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def send(client: httpx2.AsyncClient, gateway: Gateway, key: str) -> tuple[float, int]:
    began = time.time()
    response = await client.post(gateway.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                 json={"model": "fast", "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "hi"}]})
    return began, response.status_code


async def test_rpm_is_exact_across_two_replicas(replicas: list[Gateway], sim: ProviderSimulator) -> None:
    key = json.loads(keys(replicas[0], "create", "shared", "--rpm", "100", "--json"))["key"]
    # 400 requests, 128 on the wire at a time (64 per replica).
    limits = httpx2.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
        results = await asyncio.gather(*(send(client, replicas[i % 2], key) for i in range(400)))
    statuses = Counter(status for _, status in results)
    assert statuses == {200: 100, 429: 300}
    assert sim.request_count == 100  # the refused ones never reached the provider


async def test_a_key_revoked_through_the_store_is_refused_by_both_replicas_within_1s(
        replicas: list[Gateway]) -> None:
    key = json.loads(keys(replicas[0], "create", "doomed", "--json"))["key"]
    async with httpx2.AsyncClient(timeout=30) as client:
        assert [(await send(client, g, key))[1] for g in replicas] == [200, 200]  # both have it cached
        keys(replicas[1], "revoke", "doomed")
        revoked_at = time.time()
        outcomes: list[tuple[float, int]] = []
        while time.time() < revoked_at + 2.0:
            outcomes.extend(await asyncio.gather(*(send(client, g, key) for g in replicas)))
    late = [(round(began - revoked_at, 3), status) for began, status in outcomes
            if began > revoked_at + 1.0 and status == 200]
    assert late == []
    assert any(status == 401 for _, status in outcomes)  # then 429: the address is throttled after 20 failures
    assert {status for _, status in outcomes} <= {200, 401, 429}
