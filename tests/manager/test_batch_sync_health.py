"""Batching, the sync facade, loop reuse, health monitoring, backend switching and the legacy factory."""

import asyncio
import threading
import warnings

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ServiceUnavailableError, ValidationError
from spoon_llm.manager import LLMManager, get_llm_manager, set_llm_manager
from spoon_llm.testing import Fault, ProviderSimulator

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


async def test_batch_of_2000_with_10_percent_503s_all_succeed_in_order(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"],
                           retry={"max_retries": 5, "initial_backoff": 0.001, "max_backoff": 0.01})
    sim.fault("openai", Fault.unavailable(), times=None, probability=0.10, seed=7)
    progress = []
    requests = [[{"role": "user", "content": f"request {i}"}] for i in range(2000)]
    results = await manager.batch_chat(requests, concurrency=50, progress=lambda done, total: progress.append(done))
    assert [r.content for r in results] == [f"Simulated reply to: request {i}" for i in range(2000)]
    stats = manager.get_stats()
    assert stats["peak_inflight"] <= 50
    assert stats["successes"] == 2000 and stats["failures"] == 0
    assert stats["retries"] > 100  # the faults really happened
    assert progress[-1] == 2000 and len(progress) == 2000
    await manager.cleanup()


async def test_batch_from_a_generator_with_per_request_arguments(sim, make_manager):
    manager = make_manager(TWO)
    requests = ({"messages": f"q{i}", "model": "model-backup" if i % 2 else None} for i in range(10))
    results = await manager.batch_chat(requests, concurrency=3)
    assert [r.content for r in results] == [f"Simulated reply to: q{i}" for i in range(10)]
    assert [r.model for r in results][:2] == ["model-primary", "model-backup"]
    await manager.cleanup()


async def test_batch_return_exceptions_keeps_failures_in_place(sim, make_manager):
    manager = make_manager({"primary": {"model": "m"}}, retry={"max_retries": 0})
    sim.fault("openai", Fault.unavailable(), times=2)
    results = await manager.batch_chat(["a", "b", "c", "d"], concurrency=1, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["ServiceUnavailableError"] * 2 + ["LLMResponse"] * 2
    sim.fault("openai", Fault.unavailable(), times=1)
    with pytest.raises(ServiceUnavailableError):
        await manager.batch_chat(["a", "b"], concurrency=1)
    with pytest.raises(ValidationError, match="concurrency"):
        await manager.batch_chat(["a"], concurrency=0)
    await manager.cleanup()


async def test_batch_iter_streams_results_with_bounded_memory(sim, make_manager):
    manager = make_manager(TWO)
    seen = {}
    async for index, result in manager.batch_chat_iter((f"n{i}" for i in range(200)), concurrency=8):
        seen[index] = result.content
    assert seen == {i: f"Simulated reply to: n{i}" for i in range(200)}
    assert manager.get_stats()["peak_inflight"] <= 8
    await manager.cleanup()


async def test_health_checks_run_concurrently_and_mark_deployments(sim, make_manager):
    manager = make_manager({"a": {"model": "m"}, "b": {"model": "m"}, "c": {"model": "m"}})
    sim.fault("openai", Fault.slow(3.0), endpoint="models", times=3)
    checks = asyncio.create_task(manager.health_check_all())
    # All three checks reach the upstream before any of them has its answer: checks made one after another
    # never can, whatever the machine's speed (the delay only has to outlast sending three requests).
    while sim.request_count < 3:
        assert not checks.done()
        await asyncio.sleep(0.01)
    assert all(d.last_health_check is None for d in manager.router.deployments.values())
    assert await checks == {"a": True, "b": True, "c": True}
    sim.fault("openai", Fault.server_error(), endpoint="models", times=None)
    monitor = manager.start_health_monitoring(interval=0.05)
    assert manager.get_status()["health_monitoring"] is True
    await _until(lambda: monitor.checks >= 1 and not any(d["healthy"]
                                                          for d in manager.get_provider_status().values()))
    sim.reset()
    await _until(lambda: all(d["healthy"] for d in manager.get_provider_status().values()))
    await manager.stop_health_monitoring()
    assert manager.get_status()["health_monitoring"] is False
    await manager.cleanup()


async def test_unhealthy_deployment_is_skipped(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    manager.router.deployments["primary"].healthy = False
    response = await manager.chat("hi")
    assert response.deployment == "backup" and len(sim.requests) == 1
    await manager.cleanup()


async def test_switch_backend(sim, make_manager):
    manager = make_manager(TWO, default_provider="primary")
    result = await manager.switch_backend("backup")
    assert result["success"] and result["backend"] == "backup"
    assert (await manager.chat("hi")).deployment == "backup"
    sim.fault("openai", Fault.server_error(), endpoint="models", times=None)
    failed = await manager.switch_backend("primary")
    assert not failed["success"] and "health check" in failed["message"]
    assert (await manager.switch_backend("primary", skip_health_check=True))["success"]
    unknown = await manager.switch_backend("nope")
    assert not unknown["success"] and "unknown provider" in unknown["message"]
    await manager.cleanup()


def _config(sim):
    return ConfigurationManager({"providers": {"openai": {"api_key": "sk-test-sync-0000000000000000",
                                                          "base_url": sim.openai_base_url, "model": "m"}}}, env={})


def test_sync_facade_in_a_plain_script_and_across_asyncio_run_calls():
    with ProviderSimulator() as sim:
        manager = LLMManager(_config(sim))
        assert manager.sync.chat("plain").content == "Simulated reply to: plain"
        assert "".join(c.delta for c in manager.sync.chat_stream("streamed")) == "Simulated reply to: streamed"
        # the same manager, used from two separate event loops, one after the other
        assert asyncio.run(manager.chat("loop one")).content.endswith("loop one")
        assert asyncio.run(manager.chat("loop two")).content.endswith("loop two")
        manager.sync.close()


async def test_sync_facade_inside_a_running_loop_does_not_deadlock():
    with ProviderSimulator() as sim:  # served from its own thread: this test's loop is about to be blocked
        manager = LLMManager(_config(sim))
        # as in a notebook cell: a blocking call while this thread's loop is running
        assert manager.sync.chat("inside").content.endswith("inside")
        assert manager.sync.health_check_all() == {"openai": True}
        manager.sync.close()


def test_sync_calls_from_many_threads():
    with ProviderSimulator() as sim:
        manager = LLMManager(_config(sim))
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(manager.sync.chat(f"t{i}").content))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == sorted(f"Simulated reply to: t{i}" for i in range(8))
        manager.sync.close()


def test_global_manager_accessors():
    manager = LLMManager(ConfigurationManager({}, env={}))
    set_llm_manager(manager)
    try:
        assert get_llm_manager() is manager
    finally:
        set_llm_manager(None)


def test_legacy_factory_creates_a_working_llm_with_one_deprecation_warning():
    import spoon_llm.factory as factory_module
    from spoon_llm.base import LLMBase
    from spoon_llm.factory import LLMFactory

    factory_module._warned = False
    with ProviderSimulator() as sim:
        with pytest.warns(DeprecationWarning, match="use spoon_llm.manager.LLMManager"):
            llm = LLMFactory.create("openai", api_key="sk-test-legacy-000000000000000",
                                    base_url=sim.openai_base_url, model="gpt-legacy")
        assert isinstance(llm, LLMBase)
        assert llm.chat("Hello") == "Simulated reply to: Hello"
        assert sim.last_request("openai").body["model"] == "gpt-legacy"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = LLMFactory.create("openai", api_key="sk-test-legacy-000000000000000",
                                       base_url=sim.openai_base_url, model="gpt-legacy")
        assert asyncio.run(second.achat("async hello")) == "Simulated reply to: async hello"
        llm.close()
        second.close()


async def _until(condition, limit: float = 60.0) -> None:
    """Wait for ``condition`` (an event, not a duration: the limit only stops a broken run)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + limit
    while not condition():
        assert loop.time() < ends, "the condition never became true"
        await asyncio.sleep(0.01)
