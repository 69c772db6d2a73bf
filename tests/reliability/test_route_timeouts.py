"""A route's timeouts (``[models.NAME]`` ``timeout`` / ``request_timeout``) take effect, as caps over the other layers.

The upstream is the simulator holding every answer for 60 s; each route setting must end the wait long before that.
Time bounds are upper bounds far above what is needed (they catch a request held for the provider's 60 s timeout or
a 120 s deadline), never a speed requirement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.config.models import ProviderConfig
from spoon_llm.errors import ConfigurationError, LLMError, RequestTimeoutError, StreamInterruptedError
from spoon_llm.manager import LLMManager
from spoon_llm.routing.timeouts import RouteTimeouts, stream_timeouts
from spoon_llm.testing import Fault, ProviderSimulator

from ._raw import Raw, RawServer
from ._vendors import OPENAI, sse

KEY = "sk-test-route-timeouts-00000001"


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def _manager(sim: ProviderSimulator, route: dict[str, Any], **settings: Any) -> LLMManager:
    providers = {
        "primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEY, "model": "m-primary",
                    "timeout": 60},
        "backup": {"type": "anthropic", "base_url": sim.anthropic_base_url, "api_key": KEY, "model": "m-backup",
                   "timeout": 60},
    }
    return LLMManager(ConfigurationManager({
        "providers": providers, "default_provider": "primary", "request_timeout": 120,
        "models": {"slow": {"targets": ["primary"], **route}},
        "retry": {"max_retries": 2, "initial_backoff": 0.01, "max_backoff": 0.02}, **settings,
    }, env={}))


def _errors(error: BaseException) -> list[BaseException]:
    return [error, *getattr(error, "errors", [])]


async def test_a_route_timeout_bounds_each_attempt_and_retries_then_falls_back(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, {"timeout": 0.5, "fallback": ["backup"]})
    try:
        started = time.monotonic()
        response = await manager.chat("a silent primary", model="slow")
        assert time.monotonic() - started < 40  # three 0.5 s attempts, not one 60 s attempt
        assert response.provider == "anthropic" and response.fallback_path == ["primary"] * 3 + ["backup"]
        assert [a.error_type for a in response.attempts[:3]] == ["RequestTimeoutError"] * 3
    finally:
        await manager.cleanup()


async def test_the_route_timeout_applies_to_its_own_requests_only(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, {"timeout": 0.5})
    try:
        # The same provider named directly is not on the route: its attempt runs until the call's deadline.
        with pytest.raises(LLMError) as caught:
            await manager.chat("not through the route", provider="primary", fallback=False, deadline=1.5)
        assert any(isinstance(e, RequestTimeoutError) for e in _errors(caught.value))
        assert sim.request_count == 1  # one attempt held for the whole deadline: no 0.5 s cap, so no retry
    finally:
        await manager.cleanup()


async def test_a_route_request_timeout_bounds_the_whole_request(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, {"request_timeout": 1.0})
    try:
        for deadline in (None, 300.0):  # the configuration's 120 s and a call's 300 s are both cut to the route's
            started = time.monotonic()
            with pytest.raises(LLMError) as caught:
                await manager.chat("a silent primary", model="slow", deadline=deadline)
            assert time.monotonic() - started < 40
            assert any(isinstance(e, RequestTimeoutError) for e in _errors(caught.value)), repr(caught.value)
        assert manager.get_stats()["inflight"] == 0
    finally:
        await manager.cleanup()


async def test_a_route_request_timeout_bounds_a_stream(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, {"request_timeout": 1.0})
    try:
        started = time.monotonic()
        with pytest.raises(LLMError) as caught:
            async for _ in manager.chat_stream("a silent primary", model="slow"):
                pass
        assert time.monotonic() - started < 40
        assert any(isinstance(e, RequestTimeoutError) for e in _errors(caught.value)), repr(caught.value)
    finally:
        await manager.cleanup()


async def test_a_call_deadline_shorter_than_the_route_cap_still_wins(sim: ProviderSimulator) -> None:
    sim.reset()
    manager = _manager(sim, {"request_timeout": 90.0, "timeout": 30.0})
    try:
        run = manager._start(None, "slow", None, 5.0)
        assert run.remaining() <= 5.0
        slot = run.first()
        assert slot is not None and slot.timeout is not None and slot.timeout <= 5.0
        run = manager._start(None, "slow", None, None)  # the configuration's 120 s, cut to the route's 90 s
        assert 30.0 < run.remaining() <= 90.0
        slot = run.first()
        assert slot is not None and slot.timeout is not None and slot.timeout <= 30.0
    finally:
        await manager.cleanup()


@pytest.mark.parametrize("field", ["timeout", "first_token_timeout", "stream_idle_timeout", "request_timeout"])
@pytest.mark.parametrize("bad", [0, -1, "soon", True])
def test_a_bad_route_timeout_is_rejected_naming_the_route_and_field(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager({"providers": {"openai": {"api_key": KEY}},
                              "models": {"fast": {"targets": ["openai"], field: bad}}}, env={})
    assert f"models.fast.{field}" in str(caught.value)
    assert "positive number of seconds" in str(caught.value)


def test_route_caps_layer_over_the_stream_timeouts() -> None:
    config = ProviderConfig(name="p", timeout=60, first_token_timeout=20)
    assert stream_timeouts(config, None) == (20.0, 60.0)
    caps = RouteTimeouts(first_token_timeout=5, stream_idle_timeout=10)
    assert stream_timeouts(config, None, caps) == (5.0, 10.0)
    # A cap never lengthens a tighter value from the call.
    assert stream_timeouts(config, {"first_token_timeout": 2.0, "stream_idle_timeout": 3.0}, caps) == (2.0, 3.0)
    assert RouteTimeouts(timeout=4).attempt(None) == 4 and RouteTimeouts(timeout=4).attempt(2.5) == 2.5
    assert RouteTimeouts(request_timeout=9).deadline(None) == 9 and RouteTimeouts().deadline(math.inf) == math.inf


async def test_a_route_first_token_timeout_falls_over(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, {"first_token_timeout": 0.5, "fallback": ["backup"]})
    try:
        started = time.monotonic()
        chunks = [chunk async for chunk in manager.chat_stream("a silent primary", model="slow")]
        assert time.monotonic() - started < 40  # three 0.5 s waits, not the provider's 60 s
        assert chunks[-1].metadata["deployment"] == "backup" and chunks[-1].content
        assert sim.request_count == 4  # three tries on the primary, then the backup
    finally:
        await manager.cleanup()


async def test_a_trickling_stream_longer_than_its_idle_bound_completes(sim: ProviderSimulator) -> None:
    # Each gap (0.3 s) is well inside the idle bound (1.5 s) while the whole stream (~2 s) outlasts it: the one
    # timer armed for the first wait must move on with every chunk rather than fire.
    sim.reset()
    sim.fault("openai", Fault(chunk_delay=0.3), times=None)
    manager = _manager(sim, {"stream_idle_timeout": 1.5, "first_token_timeout": 1.5})
    try:
        chunks = [chunk async for chunk in manager.chat_stream("a slow but steady primary", model="slow")]
        assert chunks[-1].kind == "final" and chunks[-1].content
        assert len(chunks) >= 6  # long enough that the chunks together outlast one idle bound
    finally:
        await manager.cleanup()


async def test_a_route_stream_idle_timeout_ends_a_stalled_stream(sim: ProviderSimulator) -> None:
    async with RawServer() as raw:  # two chunks, then silence
        raw.answer = Raw(headers={"content-type": "text/event-stream"}, parts=[sse(*OPENAI.stream_events[:2])],
                         chunked=True, end="hang")
        manager = LLMManager(ConfigurationManager({
            "providers": {"primary": {"type": "openai", "base_url": raw.url + "/v1", "api_key": KEY,
                                      "model": "m-primary", "timeout": 60}},
            "request_timeout": 120, "models": {"slow": {"targets": ["primary"], "stream_idle_timeout": 0.5}},
        }, env={}))
        try:
            started = time.monotonic()
            with pytest.raises(StreamInterruptedError) as caught:
                async for _ in manager.chat_stream("a stalling primary", model="slow"):
                    pass
            assert time.monotonic() - started < 40  # the route's 0.5 s, not the provider's 60 s
            assert "stalled" in str(caught.value) and caught.value.partial_content
        finally:
            await manager.cleanup()
