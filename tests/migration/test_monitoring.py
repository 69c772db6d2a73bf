"""Monitoring as the older API's users read it: fed by the manager by default, the older method names, status."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spoon_llm import InvalidRequestError, LLMManager, get_debug_logger, get_metrics_collector
from spoon_llm.monitoring import HealthMonitor, MetricsCollector
from spoon_llm.testing import Fault, ProviderSimulator

from .conftest import KEY, openai_section


async def test_the_debug_logger_sees_requests_by_default(sim, make_manager):
    manager = make_manager({"providers": {"openai": openai_section(sim)}})
    debug_logger = get_debug_logger()
    debug_logger.set_log_level("DEBUG")
    debug_logger.enable_request_logging()
    debug_logger.enable_response_logging()
    await manager.chat("Hello")
    history = debug_logger.get_request_history()
    assert len(history) == 1
    assert history[0]["status"] == "success" and history[0]["provider"] == "openai"
    assert "Hello" in history[0]["request"]
    assert history[0]["response"] == "Simulated reply to: Hello"
    assert KEY not in repr(history)


async def test_managers_built_before_the_debug_logger_was_asked_for_feed_it_too(sim, make_manager):
    manager = make_manager({"providers": {"openai": openai_section(sim)}})
    await manager.chat("before")  # nobody asked for the debug logger yet: nothing kept, nothing paid
    debug_logger = get_debug_logger()
    await manager.chat("after")
    assert len(debug_logger.get_request_history()) == 1


async def test_metrics_are_fed_by_default_and_read_as_the_older_api_did(sim, make_manager):
    manager = make_manager({"providers": {"openai": openai_section(sim)}})
    sim.fault("openai", Fault.error(400), times=1)
    with pytest.raises(InvalidRequestError):
        await manager.chat("bad", fallback=False)
    for _ in range(3):
        await manager.chat("Hello")
    metrics = get_metrics_collector()
    stats = metrics.get_provider_stats("openai")
    assert stats.total_requests == 4 and stats.successful_requests == 3
    assert stats.successful_requests / stats.total_requests == 0.75
    assert stats["successful_requests"] == 3  # dict access keeps working
    assert metrics.get_performance_stats()["avg_response_time"] > 0


async def test_the_older_explicit_debug_api(make_manager):
    debug_logger = get_debug_logger()
    debug_logger.enable_request_logging()
    request_id = debug_logger.log_request("openai", "chat", {"messages": [{"role": "user", "content": "Hi"}],
                                                              "api_key": KEY, "temperature": 0.2})
    debug_logger.log_response(request_id, {"content": "Hello"}, 0.25)
    [record] = debug_logger.get_request_history()
    assert record["request_id"] == request_id and record["duration"] == 0.25 and record["status"] == "success"
    assert KEY not in repr(record)
    get_metrics_collector().record_request("openai", "chat", 0.5, True, tokens=30)
    assert get_metrics_collector().get_provider_stats("openai").total_tokens == 30


async def test_monitoring_can_be_switched_off(sim, make_manager):
    off = make_manager({"providers": {"openai": openai_section(sim)}}, monitoring=False)
    off_by_config = make_manager({"providers": {"openai": openai_section(sim)}, "monitoring": False})
    get_debug_logger()
    for manager in (off, off_by_config):
        assert manager.events.observers == [] and manager.metrics is None
        await manager.chat("Hello")
    assert get_metrics_collector().get_summary()["requests"]["total"] == 0
    assert get_debug_logger().get_request_history() == []
    assert off.get_status()["metrics"] == {"total_requests": 1, "successful_requests": 1, "failed_requests": 0,
                                           "monitoring": False}


async def test_a_collector_of_its_own(sim, make_manager):
    mine = MetricsCollector()
    manager = make_manager({"providers": {"openai": openai_section(sim)}}, monitoring=mine)
    await manager.chat("Hello")
    assert mine.get_summary()["requests"]["total"] == 1
    assert get_metrics_collector().get_summary()["requests"]["total"] == 0


async def test_get_status_metrics_as_the_pooled_module_read_them(sim, make_manager):
    manager = make_manager({"providers": {"openai": openai_section(sim)}})
    sim.fault("openai", Fault.error(400), times=1)
    with pytest.raises(InvalidRequestError):
        await manager.chat("bad", fallback=False)
    await manager.chat("Hello", model="gpt-4o-mini")
    await manager.chat("Hello there", model="gpt-4o")
    metrics = manager.get_status()["metrics"]
    assert (metrics["total_requests"], metrics["successful_requests"], metrics["failed_requests"]) == (3, 2, 1)
    assert metrics["input_tokens"] > 0 and metrics["output_tokens"] > 0
    assert metrics["total_tokens"] == metrics["input_tokens"] + metrics["output_tokens"]
    latency = metrics["latency"]
    assert 0 < latency["min"] <= latency["average"] <= latency["max"]
    assert metrics["errors_by_type"] == {"InvalidRequestError": 1}
    assert set(metrics["usage_by_model"]) == {"gpt-4o-mini", "gpt-4o"}
    assert metrics["usage_by_model"]["gpt-4o"]["requests"] == 1
    assert metrics["usage_by_model"]["gpt-4o"]["total_tokens"] > 0


async def test_health_monitor_without_a_manager_in_async_code(sim):
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import set_llm_manager

    manager = LLMManager(ConfigurationManager({"providers": {"openai": openai_section(sim)}}, env={}))
    set_llm_manager(manager)
    try:
        monitor = HealthMonitor()
        assert monitor.start_monitoring(interval=60) is monitor
        assert monitor.running
        for _ in range(1200):  # the first round runs at once; wait for it (at most a minute), no timing asserted
            if monitor.checks:
                break
            await asyncio.sleep(0.05)
        assert monitor.last_results == {"openai": True}
        await monitor.stop_monitoring()
        assert not monitor.running
    finally:
        set_llm_manager(None)
        await manager.cleanup()


def test_health_monitor_from_plain_code(thread_sim: ProviderSimulator):
    from spoon_llm import ConfigurationManager

    manager = LLMManager(ConfigurationManager({"providers": {"openai": openai_section(thread_sim)}}, env={}))
    monitor = HealthMonitor(manager)
    monitor.start_monitoring(interval=60)
    done = threading.Event()
    for _ in range(1200):  # at most a minute for the first round (a loaded machine), no timing asserted
        if monitor.checks:
            done.set()
            break
        done.wait(0.05)
    monitor.stop_monitoring()
    assert done.is_set() and monitor.last_results == {"openai": True}
    assert not monitor.running
    pause = threading.Event()  # never set: ``done`` is, so waiting on it would not pause at all
    for _ in range(400):  # the server notices the closed connection when its loop gets to it
        if thread_sim.open_connections == 0:
            break
        pause.wait(0.05)
    assert thread_sim.open_connections == 0  # the monitor's loop closed what it opened
