"""A rejected key (401/403) leaves rotation for ``auth_cooldown`` seconds (default 300), then one probe tries it.

The circuit breaker's clock is handed in through ``LLMManager(circuit_breaker={"clock": ...})`` so the cooldown
passes without waiting and without any timing assert.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ConfigurationError,
    ProviderUnavailableError,
)
from spoon_llm.testing import Fault, ProviderSimulator

from .conftest import KEY

KEY2 = "sk-settings-test-second-key-9876"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(sim: ProviderSimulator, clock: Clock, **provider: Any) -> LLMManager:
    section = {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini", **provider}
    return LLMManager(ConfigurationManager({"providers": {"openai": section}}, env={}),
                      circuit_breaker={"clock": clock})


async def test_a_rejected_key_is_refused_with_when_it_comes_back_then_probed_after_the_default_cooldown(
        sim: ProviderSimulator) -> None:
    clock = Clock()
    sim.fault("openai", Fault.unauthorized(), times=1)
    async with manager(sim, clock) as m:
        with pytest.raises(AuthenticationError):
            await m.chat("hi", fallback=False)
        with pytest.raises(ProviderUnavailableError) as caught:
            await m.chat("hi", fallback=False)
        error = caught.value
        assert error.provider == "openai" and error.error_code == "no_deployment_available"  # even with fallback=False
        assert error.retry_after == pytest.approx(300.0)       # the default cooldown: minutes, not forever
        message = str(error)
        assert "openai: AuthenticationError: the provider rejected the key (401)" in message
        assert "back at " in message and "(in 300 s)" in message and "reset_provider" in message
        assert KEY not in message and KEY[-4:] not in message
        assert sim.request_count == 1                           # the refused request sent nothing

        clock.now += 299.0
        with pytest.raises(ProviderUnavailableError, match=r"in 1 s"):
            await m.chat("hi", fallback=False)
        clock.now += 1.0
        assert (await m.chat("probe", fallback=False)).content  # the probe succeeds: back in rotation
        await m.chat("after", fallback=False)
        assert m.get_provider_status()["openai"]["disabled_reason"] is None
    assert sim.request_count == 3


async def test_a_probe_that_is_rejected_again_quarantines_the_key_for_another_cooldown(
        sim: ProviderSimulator) -> None:
    clock = Clock()
    sim.fault("openai", Fault.forbidden(), times=2)
    async with manager(sim, clock, auth_cooldown=60) as m:
        with pytest.raises(AuthenticationError):
            await m.chat("hi", fallback=False)
        clock.now += 60.0
        with pytest.raises(AuthenticationError):
            await m.chat("probe", fallback=False)
        with pytest.raises(ProviderUnavailableError) as caught:
            await m.chat("hi", fallback=False)
        assert caught.value.retry_after == pytest.approx(60.0)
        assert "rejected the key (403)" in str(caught.value)
    assert sim.request_count == 2


async def test_only_one_probe_goes_out_while_it_is_in_flight(sim: ProviderSimulator) -> None:
    clock = Clock()
    sim.fault("openai", Fault.unauthorized(), times=1)
    async with manager(sim, clock, auth_cooldown=10) as m:
        with pytest.raises(AuthenticationError):
            await m.chat("hi", fallback=False)
        clock.now += 10.0
        sim.fault("openai", Fault.slow(0.5), times=1)
        probe = asyncio.ensure_future(m.chat("probe", fallback=False))
        while sim.request_count < 2:  # the probe reached the simulator
            await asyncio.sleep(0.01)
        with pytest.raises(ProviderUnavailableError, match="a probe request is in flight"):
            await m.chat("meanwhile", fallback=False)
        assert (await probe).content
    assert sim.request_count == 2


async def test_one_rejected_key_of_two_leaves_the_other_serving_and_both_rejected_are_both_named(
        sim: ProviderSimulator) -> None:
    clock = Clock()
    section = {"api_keys": [KEY, KEY2], "key_models": ["model-one", "model-two"]}
    sim.fault("openai", Fault.unauthorized(), model="model-one", times=None)
    async with manager(sim, clock, **section) as m:
        for _ in range(4):
            response = await m.chat("hi", fallback=False)
            assert response.deployment == "openai#key2"
        assert len(sim.requests_for("openai", "chat")) == 5  # one 401 on key1, then key2 only

        sim.fault("openai", Fault.unauthorized(), model="model-two", times=None)
        clock.now += 300.0  # key1's probe is due: rejected again, then key2 is rejected too
        with pytest.raises(AllProvidersFailedError):
            await m.chat("hi", fallback=False)
        with pytest.raises(ProviderUnavailableError) as caught:
            await m.chat("hi", fallback=False)
    message = str(caught.value)
    assert caught.value.provider == "openai"
    assert "openai#key1: AuthenticationError" in message and "openai#key2: AuthenticationError" in message
    assert message.count("back at ") == 2


async def test_with_fallback_the_error_names_every_provider_and_no_single_one(sim: ProviderSimulator) -> None:
    clock = Clock()
    settings = ConfigurationManager({
        "fallback_chain": ["openai", "anthropic"],
        "providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"},
                      "anthropic": {"api_key": KEY2, "base_url": sim.anthropic_base_url,
                                    "model": "claude-sonnet-4-5", "auth_cooldown": 120}}}, env={})
    sim.fault(None, Fault.unauthorized(), times=2)
    async with LLMManager(settings, circuit_breaker={"clock": clock}) as m:
        with pytest.raises(AllProvidersFailedError):
            await m.chat("hi")
        with pytest.raises(ProviderUnavailableError) as caught:
            await m.chat("hi")
    error = caught.value
    assert error.provider is None and error.retry_after == pytest.approx(120.0)  # the sooner of the two
    assert "openai: AuthenticationError" in str(error) and "anthropic: AuthenticationError" in str(error)


def test_the_cooldown_is_checked_where_it_is_set(tmp_path: Any) -> None:
    path = tmp_path / "app.toml"
    path.write_text(f'[providers.openai]\napi_key = "{KEY}"\nauth_cooldown = -1\n')
    with pytest.raises(ConfigurationError, match=r"app.toml: providers.openai.auth_cooldown"):
        ConfigurationManager(path, env={})



async def test_a_stream_is_refused_the_same_way(sim: ProviderSimulator) -> None:
    clock = Clock()
    sim.fault("openai", Fault.unauthorized(), times=1)
    async with manager(sim, clock) as m:
        with pytest.raises(AuthenticationError):
            async for _ in m.chat_stream("hi", fallback=False):
                pass
        with pytest.raises(ProviderUnavailableError) as caught:
            async for _ in m.chat_stream("hi", fallback=False):
                pass
        assert caught.value.provider == "openai" and caught.value.retry_after == pytest.approx(300.0)
        clock.now += 300.0
        chunks = [chunk async for chunk in m.chat_stream("probe", fallback=False)]
        assert chunks
    assert sim.request_count == 2


async def test_a_later_outage_is_not_blamed_on_the_key(sim: ProviderSimulator) -> None:
    clock = Clock()
    sim.fault("openai", Fault.unauthorized(), times=1)
    settings = ConfigurationManager({"retry": {"max_retries": 0}, "providers": {"openai": {
        "api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"}}}, env={})
    async with LLMManager(settings, circuit_breaker={"clock": clock, "failure_threshold": 1}) as m:
        with pytest.raises(AuthenticationError):
            await m.chat("hi", fallback=False)
        clock.now += 300.0
        await m.chat("probe", fallback=False)  # the key works again
        sim.fault("openai", Fault.unavailable(), times=1)
        with pytest.raises(ProviderUnavailableError):
            await m.chat("outage", fallback=False)  # opens the circuit (threshold 1)
        with pytest.raises(ProviderUnavailableError) as caught:
            await m.chat("hi", fallback=False)
    assert "its circuit is open after repeated failures" in str(caught.value)
    assert "rejected the key" not in str(caught.value)
    assert caught.value.retry_after == pytest.approx(30.0)  # the circuit's own cooldown
