"""Circuit openings shared through the state store: one process's open circuit keeps the others away."""

from typing import Any

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.middleware.circuit import SharedCircuitMiddleware
from spoon_llm.middleware.defaults import build_middleware, close_middleware
from spoon_llm.state import MemoryStore, StateStore
from spoon_llm.state.redis import RedisStore
from spoon_llm.testing import Fault


def _manager(sim: Any, store: StateStore) -> tuple[LLMManager, list[Any]]:
    data = {"providers": {"primary": {"type": "openai", "api_key": "sk-test-primary-xxxxxxxxxxxx",
                                      "base_url": sim.openai_base_url, "model": "model-primary"},
                          "backup": {"type": "openai", "api_key": "sk-test-backup-xxxxxxxxxxxxx",
                                     "base_url": sim.openai_base_url, "model": "model-backup"}},
            "fallback_chain": ["primary", "backup"], "retry": {"max_retries": 0},
            "state": {"share_circuits": True}}
    config = ConfigurationManager(data, env={})
    chain = build_middleware(config, store=store)
    assert isinstance(chain[0], SharedCircuitMiddleware)
    return LLMManager(config, middleware=chain, circuit_breaker={"failure_threshold": 1, "cooldown": 30}), chain


async def test_an_open_circuit_in_one_manager_keeps_the_other_away(sim: Any) -> None:
    shared = MemoryStore()  # stands for Redis: the one store both "processes" see
    first, first_chain = _manager(sim, shared)
    second, second_chain = _manager(sim, shared)
    sim.fault("openai", Fault.server_error(), model="model-primary", times=1)
    response = await first.chat("hi")
    assert response.deployment == "backup"
    assert first.get_provider_status()["primary"]["circuit"]["state"] == "open"
    sim.reset()
    response = await second.chat("hi")  # its own circuit is closed, but the shared one is open
    assert response.deployment == "backup"
    assert [r.body["model"] for r in sim.requests] == ["model-backup"]
    assert second.get_provider_status()["primary"]["circuit"]["state"] == "closed"  # not counted as a failure
    assert second.get_status()["middleware"]["shared_circuit"]["refused"] == 1
    for manager, chain in ((first, first_chain), (second, second_chain)):
        await manager.cleanup()
        await close_middleware(chain)


async def test_the_opening_travels_through_redis(sim: Any, redis_server: str, redis_prefix: str) -> None:
    # Two stores on one Redis server: as two processes would see it.
    first_store, second_store = RedisStore(redis_server, prefix=redis_prefix), RedisStore(redis_server,
                                                                                           prefix=redis_prefix)
    first, first_chain = _manager(sim, first_store)
    second, second_chain = _manager(sim, second_store)
    sim.fault("openai", Fault.server_error(), model="model-primary", times=1)
    assert (await first.chat("hi")).deployment == "backup"
    sim.reset()
    assert (await second.chat("hi")).deployment == "backup"
    assert [r.body["model"] for r in sim.requests] == ["model-backup"]
    for manager, chain, store in ((first, first_chain, first_store), (second, second_chain, second_store)):
        await manager.cleanup()
        await close_middleware(chain)
        await store.close()
