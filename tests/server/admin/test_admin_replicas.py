"""Two ``spoon-llm serve`` replicas sharing one redis-server: a budget set and a backend switched through one
replica take effect on the other (within 1 s by design: both poll the shared version every 0.5 s; asserted on the
eventual effect under a generous overall timeout, never on a time bound), and each action is audited once."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import httpx2
import pytest
import redis

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, redis_state, running_gateways
from .conftest import ADMIN, admin_config, cli, wait_for


@pytest.fixture(scope="module")
def replicas(simulators: tuple[ProviderSimulator, ProviderSimulator], redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Gateway], str]]:
    sim, slow = simulators
    prefix = f"adminreplicas{os.getpid()}"
    dirs = [tmp_path_factory.mktemp(f"admin-replica{index}") for index in range(2)]
    with running_gateways((redis_state(admin_config(sim, slow, state_dir), redis_url, prefix), state_dir)
                          for state_dir in dirs) as running:
        yield running, prefix


def get(gateway: Gateway, path: str, **params: object) -> dict[str, object]:
    response = httpx2.get(gateway.url + path, headers=ADMIN, params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def post(gateway: Gateway, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx2.post(gateway.url + path, headers=ADMIN, json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_budget_and_backend_changes_reach_the_other_replica_and_are_audited_once(
        replicas: tuple[list[Gateway], str]) -> None:
    (first, second), _ = replicas
    assert post(first, "/api/admin/budget", {"budget_limit": 42.5})["success"] is True
    began = time.monotonic()
    wait_for(lambda: get(second, "/api/admin/budget")["budget_limit"] == 42.5)
    budget_seen = time.monotonic() - began

    assert post(first, "/api/admin/backend/switch", {"backend": "anthropic", "skip_health_check": False})["success"]
    began = time.monotonic()
    wait_for(lambda: get(second, "/api/admin/backend/current")["backend"] == "anthropic")
    switch_seen = time.monotonic() - began
    print(f"\nbudget seen by the other replica after {budget_seen:.3f}s, switch after {switch_seen:.3f}s")
    assert get(second, "/api/admin/costs")["budget_limit"] == 42.5

    # Each action once in the shared log, whichever replica is asked.
    for gateway in (first, second):
        budgets = get(gateway, "/api/admin/audit", action="budget_changed")
        switches = get(gateway, "/api/admin/audit", action="backend_switched")
        assert [(r["target"], r["after"]) for r in budgets["items"]] == [  # type: ignore[index]
            ("global", {"budget_limit": 42.5, "period": "total"})]
        assert [r["target"] for r in switches["items"]] == ["anthropic"]  # type: ignore[index]


def test_a_budget_set_through_one_replica_blocks_calls_on_the_other(replicas: tuple[list[Gateway], str]) -> None:
    (first, second), _ = replicas
    chat = {"model": "fast", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx2.post(second.url + "/v1/chat/completions", headers=ADMIN, json=chat, timeout=30).status_code == 200
    post(first, "/api/admin/budget", {"budget_limit": 0.0})
    try:
        def refused() -> bool:
            response = httpx2.post(second.url + "/v1/chat/completions", headers=ADMIN, json=chat, timeout=30)
            return response.status_code != 200 and "budget" in response.text.lower()

        wait_for(refused)
    finally:
        post(first, "/api/admin/budget", {"budget_limit": 1000.0})
    wait_for(lambda: httpx2.post(second.url + "/v1/chat/completions", headers=ADMIN, json=chat,
                                 timeout=30).status_code == 200)


def test_an_endpoint_set_through_one_replica_is_used_by_the_other(
        replicas: tuple[list[Gateway], str], simulators: tuple[ProviderSimulator, ProviderSimulator]) -> None:
    (first, second), _ = replicas
    sim, slow = simulators
    slow.reset()
    sim.reset()
    chat = {"model": "slow-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx2.post(second.url + "/v1/chat/completions", headers=ADMIN, json=chat, timeout=30).status_code == 200
    assert slow.request_count == 1
    post(first, "/api/admin/backend/slow/endpoint", {"endpoint": sim.openai_base_url})

    def moved() -> bool:
        before = sim.request_count
        response = httpx2.post(second.url + "/v1/chat/completions", headers=ADMIN, json=chat, timeout=30)
        return response.status_code == 200 and sim.request_count > before

    wait_for(moved)
    post(first, "/api/admin/backend/slow/endpoint", {"endpoint": slow.openai_base_url})


def test_audit_verify_over_redis_passes_then_names_an_altered_record(
        replicas: tuple[list[Gateway], str], redis_url: str) -> None:
    (first, _), prefix = replicas
    config = first.state_dir / "gateway.toml"
    client = redis.Redis.from_url(redis_url)
    key = f"{prefix}:{{admin}}:audit"
    # A record of its own (the module's earlier tests may not have run: -k, a single test), in Redis before the check.
    post(first, "/api/admin/budget", {"budget_limit": 1000.0})
    wait_for(lambda: client.llen(key) > 0)
    intact = cli(config, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "redis:" in intact.stdout
    try:
        original = client.lindex(key, 0)
        assert original is not None
        record = json.loads(original)
        record["after"] = {"budget_limit": 1e9, "period": "total"}
        client.lset(key, 0, json.dumps(record))
        broken = cli(config, "audit", "verify")
        assert broken.returncode == 1 and "record 1:" in broken.stderr
        client.lset(key, 0, original)
    finally:
        client.close()
    assert cli(config, "audit", "verify").returncode == 0
