"""Load balancing over keys and providers, and circuit breaking, observed at the simulator."""

import asyncio
import random
from collections import Counter

from spoon_llm.routing import Balancer, CircuitBreaker, CircuitState
from spoon_llm.testing import Fault


async def test_round_robin_over_three_keys_splits_evenly(sim, make_manager, keys, key_suffix):
    manager = make_manager({"pool": {"api_keys": [keys["k1"], keys["k2"], keys["k3"]], "model": "m"}},
                           load_balancing="round_robin")
    for _ in range(300):
        await manager.chat("hi")
    used = Counter(r.headers["authorization"] for r in sim.requests_for("openai", "chat"))
    assert used == {f"Bearer {key_suffix(k)}": 100 for k in ("k1", "k2", "k3")}
    assert {d["key_alias"] for d in manager.get_provider_status().values()} == {"key1", "key2", "key3"}
    await manager.cleanup()


async def test_round_robin_holds_under_concurrency(sim, make_manager, keys):
    manager = make_manager({"pool": {"api_keys": [keys["k1"], keys["k2"], keys["k3"]], "model": "m"}},
                           load_balancing="round_robin")
    await asyncio.gather(*(manager.chat("hi") for _ in range(300)))
    assert sorted(Counter(r.headers["authorization"] for r in sim.requests).values()) == [100, 100, 100]
    await manager.cleanup()


async def test_weighted_balancing_follows_weights(sim, make_manager, keys):
    manager = make_manager({"pool": {"api_keys": [{"api_key": keys["k1"], "weight": 3},
                                                  {"api_key": keys["k2"], "weight": 1}], "model": "m"}},
                           load_balancing="weighted")
    for _ in range(40):
        await manager.chat("hi")
    counts = Counter(r.headers["authorization"][-4:] for r in sim.requests)
    assert counts[keys["k1"][-4:]] == 30 and counts[keys["k2"][-4:]] == 10
    await manager.cleanup()


async def test_latency_aware_prefers_the_fast_deployment(sim, make_manager):
    manager = make_manager({"fast": {"model": "fast-model"}, "slow": {"model": "slow-model"}},
                           models={"any": {"targets": ["fast", "slow"]}})
    # Seeded exploration, and no first-use costs (client set-up, SDK import) in the measured latencies: each
    # deployment answers once, then its statistics start afresh.
    manager.router.balancer = Balancer("latency", rng=random.Random(7))
    for name in ("fast", "slow"):
        await manager.chat("warm up", provider=name, fallback=False)
        manager.reset_provider(name)
    sim.reset()
    # The slow deployment's delay is a floor on every one of its samples; the fast one has none, so its average
    # passes the slow one's only if the machine stalls for seconds.
    sim.fault("openai", Fault.slow(0.5), model="slow-model", times=None)
    for _ in range(40):
        await manager.chat("hi", model="any")
    counts = Counter(r.body["model"] for r in sim.requests)
    assert counts["fast-model"] >= 35, counts
    assert counts["slow-model"] >= 1  # measured at least once, so the choice is informed
    status = manager.get_provider_status()
    assert status["fast"]["latency_ewma"] < status["slow"]["latency_ewma"]
    await manager.cleanup()


async def test_least_inflight_spreads_concurrent_load(sim, make_manager, keys):
    manager = make_manager({"pool": {"api_keys": [keys["k1"], keys["k2"]], "model": "m"}},
                           load_balancing="least_inflight")
    sim.fault("openai", Fault.slow(0.02), times=None)
    await asyncio.gather(*(manager.chat("hi") for _ in range(40)))
    assert sorted(Counter(r.headers["authorization"] for r in sim.requests).values()) == [20, 20]
    await manager.cleanup()


async def test_open_circuit_gets_no_traffic_until_its_cooldown_ends(sim, make_manager):
    manager = make_manager(
        {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}},
        fallback_chain=["primary", "backup"], retry={"max_retries": 0},
        manager_kwargs={"circuit_breaker": {"failure_threshold": 2, "cooldown": 0.3}},
    )
    sim.fault("openai", Fault.server_error(), model="model-primary", times=2)
    await manager.chat("1")
    await manager.chat("2")
    assert manager.get_provider_status()["primary"]["circuit"]["state"] == "open"
    sim.reset()
    for i in range(5):
        await manager.chat(f"while open {i}")
    assert {r.body["model"] for r in sim.requests} == {"model-backup"}
    await asyncio.sleep(0.35)
    await manager.chat("after cooldown")  # the single half-open probe succeeds
    assert sim.requests[-1].body["model"] == "model-primary"
    assert manager.get_provider_status()["primary"]["circuit"]["state"] == "closed"
    await manager.cleanup()


def test_half_open_admits_exactly_one_probe():
    now = [0.0]
    changes = []
    breaker = CircuitBreaker(failure_threshold=1, cooldown=10, clock=lambda: now[0],
                             on_change=lambda old, new: changes.append(new))
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow_request()
    now[0] = 10.0
    assert breaker.allow_request() is True
    assert breaker.allow_request() is False  # the probe is in flight
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and breaker.retry_at == 20.0
    now[0] = 20.0
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.OPEN, CircuitState.HALF_OPEN,
                       CircuitState.CLOSED]


def test_failure_rate_over_a_window_opens_the_circuit():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=100, failure_rate=0.5, min_requests=10, window=60,
                             clock=lambda: now[0])
    for i in range(10):
        now[0] += 1
        breaker.record_failure() if i % 3 != 1 else breaker.record_success()
    assert breaker.state is CircuitState.OPEN
    quiet = CircuitBreaker(failure_threshold=100, failure_rate=0.5, min_requests=10, window=5,
                           clock=lambda: now[0])
    for i in range(10):
        now[0] += 1  # old failures leave the 5-second window
        quiet.record_failure() if i < 4 else quiet.record_success()
    assert quiet.state is CircuitState.CLOSED


def test_unknown_strategy_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="unknown load-balancing strategy 'fastest'"):
        Balancer("fastest")  # type: ignore[arg-type]
