"""Deadlines cover everything a request waits for; timeouts are layers that never replace each other.

Time bounds here are upper bounds far above what is needed (they catch a request held for a limiter's whole
wait or a whole deadline), never a speed requirement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import LLMError, RequestTimeoutError, ValidationError
from spoon_llm.manager import DEFAULT_REQUEST_TIMEOUT, LLMManager
from spoon_llm.middleware.base import Middleware
from spoon_llm.routing.timeouts import pop_stream_options, stream_timeout_error
from spoon_llm.testing import Fault, ProviderSimulator


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def _manager(sim: ProviderSimulator, **settings: Any) -> LLMManager:
    section = {"type": "openai", "base_url": sim.openai_base_url, "api_key": "sk-test-deadline-0000000001",
               "model": "m-deadline", **settings.pop("provider", {})}
    return LLMManager(ConfigurationManager({"providers": {"openai": section}, "retry": {"max_retries": 0},
                                            **settings}, env={}))


async def test_a_rate_limiter_wait_counts_against_the_deadline(sim: ProviderSimulator) -> None:
    sim.reset()
    manager = _manager(sim, provider={"rpm": 1}, rate_limits={"on_limit": "wait", "max_wait": 600})
    try:
        await manager.chat("takes the only slot of this minute")
        started = time.monotonic()
        with pytest.raises(LLMError) as caught:
            await manager.chat("waits for the next minute", deadline=0.5)
        assert time.monotonic() - started < 30  # not the limiter's 60 s wait
        errors = [caught.value, *getattr(caught.value, "errors", [])]
        assert any(isinstance(e, RequestTimeoutError) for e in errors), repr(caught.value)
        assert sim.request_count == 1  # the waiting request never went out
        # ...and gave back what it held: no in-flight count is left behind.
        assert manager.get_stats()["inflight"] == 0
    finally:
        await manager.cleanup()


async def test_the_attempt_timeout_is_the_provider_timeout_within_the_deadline(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    manager = _manager(sim, provider={"timeout": 0.3}, request_timeout=120, retry={"max_retries": 2,
                                                                                   "initial_backoff": 0.01})
    try:
        started = time.monotonic()
        with pytest.raises(LLMError):
            await manager.chat("a silent upstream")
        assert time.monotonic() - started < 30  # three 0.3 s attempts, not one 120 s attempt
        assert sim.request_count == 3
    finally:
        await manager.cleanup()


async def test_without_configuration_a_request_still_has_a_total_bound(sim: ProviderSimulator) -> None:
    manager = _manager(sim)
    try:
        run = manager._start(None, None, None, None)
        assert run.remaining() <= DEFAULT_REQUEST_TIMEOUT
    finally:
        await manager.cleanup()


def test_stream_timeout_options_are_validated() -> None:
    kwargs: dict[str, Any] = {"first_token_timeout": 2, "stream_idle_timeout": 5.5, "temperature": 0}
    assert pop_stream_options(kwargs) == {"first_token_timeout": 2.0, "stream_idle_timeout": 5.5}
    assert kwargs == {"temperature": 0}
    assert pop_stream_options({"temperature": 0}) is None
    for bad in (0, -1, float("inf"), "3", True):
        with pytest.raises(ValidationError, match="first_token_timeout"):
            pop_stream_options({"first_token_timeout": bad})


def test_whose_limit_ran_out_decides_whether_a_stream_timeout_is_retried() -> None:
    first = stream_timeout_error(1.0, 50.0, False, "openai", "m")
    stalled = stream_timeout_error(1.0, 50.0, True, "openai", "m")
    deadline = stream_timeout_error(1.0, 0.5, True, "openai", "m")
    assert first.retryable and "first token" in str(first)
    assert stalled.retryable and "stalled" in str(stalled)
    assert not deadline.retryable and "deadline" in str(deadline)


async def test_a_bad_stream_timeout_setting_is_rejected_naming_the_field() -> None:
    from spoon_llm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="first_token_timeout"):
        ConfigurationManager({"providers": {"openai": {"api_key": "sk-test-deadline-0000000001",
                                                       "first_token_timeout": -1}}}, env={})


class _RefuseOnce(Middleware):
    """A middleware after the rate limiter that refuses the first attempt it sees (before anything is sent)."""

    name = "refuse_once"

    def __init__(self) -> None:
        self.refused = False

    def before_attempt(self, ctx: Any) -> None:
        if not self.refused:
            self.refused = True
            raise ValidationError("refused before sending")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_a_rate_limit_slot_of_an_attempt_that_sent_nothing_is_given_back(sim: ProviderSimulator,
                                                                                 backend: str, tmp_path: Any) -> None:
    sim.reset()
    manager = _manager(sim, provider={"rpm": 1}, rate_limits={"on_limit": "fail"},
                       state={"backend": backend, "path": str(tmp_path / "state.db")})
    manager.add_middleware(_RefuseOnce())
    try:
        with pytest.raises(ValidationError):
            await manager.chat("refused after the limiter admitted it")
        assert sim.request_count == 0
        # The only slot of this minute is free again: this one is admitted and sent.
        assert (await manager.chat("takes the slot")).content
        with pytest.raises(LLMError, match="rpm limit"):
            await manager.chat("over the limit")
    finally:
        await manager.cleanup()


class _PassThrough(Middleware):
    """An ``around_attempt`` hook that only calls what it wraps (as a cache does on a miss)."""

    name = "pass_through"

    async def around_attempt(self, ctx: Any, call_next: Any) -> Any:
        return await call_next()


async def test_the_deadline_bounds_a_wrapped_attempt_too(sim: ProviderSimulator) -> None:
    # The provider call inside around_attempt hooks is bounded once, by the whole wrapped attempt's deadline.
    sim.reset()
    sim.fault("openai", Fault.slow(60.0), times=None)
    section = {"type": "openai", "base_url": sim.openai_base_url, "api_key": "sk-test-deadline-0000000001",
               "model": "m-deadline"}
    manager = LLMManager(ConfigurationManager({"providers": {"openai": section}, "retry": {"max_retries": 0}},
                                              env={}), middleware=[_PassThrough()], default_middleware=False)
    try:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            await manager.chat("slow", deadline=0.3)
        assert time.monotonic() - started < 30  # not the simulator's 60 s
        assert manager.get_stats()["inflight"] == 0
        assert manager.get_provider_status()["openai"]["inflight"] == 0
    finally:
        await manager.cleanup()
