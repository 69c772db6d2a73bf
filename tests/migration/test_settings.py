"""The older per-provider settings have their effect, seen at the simulator; in dicts, JSON files and initialize()."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from spoon_llm import ConfigurationError, ConfigurationManager, LLMError, LLMManager, ProviderUnavailableError
from spoon_llm.providers.openai import OpenAIProvider
from spoon_llm.testing import Fault

from .conftest import KEY, openai_section

# Backoffs a test never waits for: the older per-provider settings must be what makes the retries quick.
SLOW_RETRIES = {"initial_backoff": 30.0, "max_backoff": 30.0, "jitter": False}


@pytest.mark.parametrize("spelling", ["retry_attempts", "max_retries"])
async def test_retries_per_provider_are_counted_at_the_simulator(sim, make_manager, spelling):
    manager = make_manager({"llm_providers": {"openai": openai_section(sim, **{spelling: 2}, retry_delay=0.001)},
                            "retry": {"max_retries": 0, **SLOW_RETRIES}})
    sim.fault("openai", Fault.error(503), times=2)
    response = await manager.chat("Hello", fallback=False)
    assert response.content == "Simulated reply to: Hello"
    assert sim.request_count == 3  # two retries of this provider, though [retry] allows none

    sim.reset()
    sim.fault("openai", Fault.error(503), times=None)
    with pytest.raises(LLMError, match="all 3 attempts failed"):
        await manager.chat("Hello", fallback=False)
    assert sim.request_count == 3


async def test_retry_delay_is_the_first_backoff(sim, make_manager):
    # With [retry]'s 30 s backoff a retry would outlive the 20 s deadline, so none is made ...
    slow = make_manager({"providers": {"openai": openai_section(sim, max_retries=1)}, "request_timeout": 20,
                         "retry": SLOW_RETRIES})
    sim.fault("openai", Fault.error(503), times=1)
    with pytest.raises(ProviderUnavailableError):
        await slow.chat("Hello", fallback=False)
    assert sim.request_count == 1
    # ... while the provider's own retry_delay makes it worth making.
    sim.reset()
    quick = make_manager({"providers": {"openai": openai_section(sim, max_retries=1, retry_delay=0.001)},
                          "request_timeout": 20, "retry": SLOW_RETRIES})
    sim.fault("openai", Fault.error(503), times=1)
    assert (await quick.chat("Hello", fallback=False)).content == "Simulated reply to: Hello"
    assert sim.request_count == 2


async def _connections(sim: Any, expected: int) -> int:
    """The simulator's open connections once closed ones are noticed (waits at most 10 s for ``expected``)."""
    for _ in range(200):
        if sim.open_connections == expected:
            break
        await asyncio.sleep(0.05)
    return int(sim.open_connections)


async def _six_at_once(manager: LLMManager) -> None:
    answers = await asyncio.gather(*(manager.chat(f"request {i}") for i in range(6)))
    assert sorted(a.content for a in answers) == [f"Simulated reply to: request {i}" for i in range(6)]


async def test_max_concurrent_requests_caps_what_is_in_flight(sim, make_manager):
    # Each answer takes a while: six requests at once need six connections, unless only two are let through.
    sim.fault("openai", Fault(delay=0.2), times=None)
    capped = make_manager({"providers": {"openai": openai_section(sim, max_concurrent_requests=2)}})
    await _six_at_once(capped)
    assert sim.request_count == 6
    assert await _connections(sim, 2) == 2  # the rest waited their turn and reused the two connections
    assert capped.get_status()["middleware"]["concurrency"]["peak"] == {"openai": 2}
    assert capped.get_status()["middleware"]["concurrency"]["inflight"] == {"openai": 0}
    await capped.cleanup()

    uncapped = make_manager({"providers": {"openai": openai_section(sim)}})
    await _six_at_once(uncapped)
    assert await _connections(sim, 6) == 6


async def test_connection_pool_size_is_observed_as_connections(sim, make_manager):
    sim.fault("openai", Fault(delay=0.2), times=None)
    manager = make_manager({"llm_providers": {"openai": openai_section(sim, connection_pool_size=3)}})
    assert manager.config_manager.config.providers["openai"].max_connections == 3
    await _six_at_once(manager)
    assert await _connections(sim, 3) == 3


async def test_keep_alive_false_closes_each_connection(sim, make_manager):
    closing = make_manager({"providers": {"openai": openai_section(sim, keep_alive=False)}})
    for _ in range(3):
        await closing.chat("Hello")
    assert [r.header("connection") for r in sim.requests] == ["close"] * 3
    sim.reset()
    kept = make_manager({"providers": {"openai": openai_section(sim)}})
    for _ in range(3):
        await kept.chat("Hello")
    assert [r.header("connection") for r in sim.requests] != ["close"] * 3
    assert await _connections(sim, 1) == 1  # three requests, one connection


async def test_enable_caching_and_cache_ttl_through_the_older_layout(sim, tmp_path):
    path = tmp_path / "llm.json"
    path.write_text(json.dumps({"llm_providers": {"openai": openai_section(sim, enable_caching=True,
                                                                            cache_ttl=60)}}))
    manager = LLMManager(ConfigurationManager(str(path), env={}))
    try:
        first = await manager.chat("Cache me", temperature=0)
        second = await manager.chat("Cache me", temperature=0)
    finally:
        await manager.cleanup()
    assert first.content == second.content == "Simulated reply to: Cache me"
    assert sim.request_count == 1


async def test_older_settings_in_a_dict_given_to_initialize(sim):
    provider = OpenAIProvider()
    await provider.initialize({"api_key": KEY, "base_url": sim.openai_base_url, "default_model": "gpt-4o",
                               "retry_attempts": 4, "connection_pool_size": 7, "keep_alive": False,
                               "max_concurrent_requests": 3, "retry_delay": 0.5, "enable_caching": True,
                               "cache_ttl": 10})
    try:
        config = provider.config
        assert (config.model, config.max_retries, config.max_connections, config.keep_alive) == ("gpt-4o", 4, 7,
                                                                                                 False)
        assert (config.max_concurrent_requests, config.retry_delay, config.enable_caching, config.cache_ttl) == (
            3, 0.5, True, 10)
        assert config["api_key"] == KEY and config.get("model") == "gpt-4o"
        await provider.chat([{"role": "user", "content": "Hello"}])
    finally:
        await provider.cleanup()
    assert sim.last_request().body["model"] == "gpt-4o"
    assert sim.last_request().header("connection") == "close"


def test_older_settings_in_files(tmp_path, sim):
    toml = tmp_path / "spoon.toml"
    toml.write_text(f"[providers.openai]\napi_key = '{KEY}'\nretry_attempts = 5\nretry_delay = 0.25\n"
                    "max_concurrent_requests = 4\nconnection_pool_size = 9\nkeep_alive = false\n")
    section = ConfigurationManager(str(toml), env={}).load_provider_config("openai")
    assert (section.max_retries, section.retry_delay, section.max_concurrent_requests, section.max_connections,
            section.keep_alive) == (5, 0.25, 4, 9, False)


@pytest.mark.parametrize(("settings", "message"), [
    ({"retry_attempts": 2, "max_retries": 3}, "retry_attempts and max_retries are the same setting"),
    ({"connection_pool_size": 2, "max_connections": 3}, "connection_pool_size and max_connections"),
    ({"max_concurrent_requests": 0}, "max_concurrent_requests: expected a positive integer"),
    ({"retry_delay": -1}, "retry_delay"),
    ({"keep_alive": "sometimes"}, "keep_alive: expected true or false"),
])
def test_wrong_older_settings_are_rejected_with_the_key(settings, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        ConfigurationManager({"providers": {"openai": {"api_key": KEY, **settings}}}, env={})
    assert "providers.openai" in str(caught.value)
    assert KEY not in str(caught.value)
