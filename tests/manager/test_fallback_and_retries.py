"""The error policy through the simulator: real openai SDK, real sockets, faults injected server-side."""

import time

import pytest

from spoon_llm.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from spoon_llm.testing import Fault

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


def models_seen(sim):
    return [r.body["model"] for r in sim.requests_for("openai", "chat")]


async def test_503_three_times_then_falls_back(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 2,
                                                                             "initial_backoff": 0.01})
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=3)
    response = await manager.chat("hi")
    assert response.model == "model-backup"
    assert models_seen(sim) == ["model-primary"] * 3 + ["model-backup"]
    assert [(a.deployment, a.error_type, a.status_code) for a in response.attempts] == [
        ("primary", "ServiceUnavailableError", 503)] * 3 + [("backup", None, None)]
    assert response.fallback_path == ["primary", "primary", "primary", "backup"]
    assert all(a.key_alias == "default" for a in response.attempts)
    await manager.cleanup()


async def test_retry_recovers_on_the_same_deployment(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.fault("openai", Fault.server_error(), model="model-primary", times=2)
    response = await manager.chat("hi")
    assert response.model == "model-primary"
    assert len(response.attempts) == 3
    assert manager.get_stats()["fallbacks"] == 0
    await manager.cleanup()


async def test_429_with_retry_after_is_waited_for(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.fault("openai", Fault.rate_limited(retry_after=1), model="model-primary", times=1)
    started = time.monotonic()
    response = await manager.chat("hi")
    elapsed = time.monotonic() - started
    assert response.model == "model-primary"
    assert elapsed >= 1.0
    assert response.attempts[0].error_type == "RateLimitError"
    assert response.attempts[1].waited >= 1.0
    await manager.cleanup()


async def test_401_skips_at_once_and_takes_the_key_out_of_rotation(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.fault("openai", Fault.unauthorized(), model="model-primary", times=1)
    started = time.monotonic()
    response = await manager.chat("hi")
    assert time.monotonic() - started < 0.5
    assert response.model == "model-backup"
    assert [a.error_type for a in response.attempts] == ["AuthenticationError", None]
    status = manager.get_provider_status()["primary"]
    assert status["available"] is False and "rejected the key" in status["disabled_reason"]
    sim.reset()
    await manager.chat("again")
    assert models_seen(sim) == ["model-backup"]  # the rejected deployment got no more traffic
    manager.reset_provider("primary")
    await manager.chat("after reset")
    assert models_seen(sim)[-1] == "model-primary"
    await manager.cleanup()


async def test_400_fails_fast_without_fallback(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.fault("openai", Fault.error(400, "Invalid value for 'temperature'"), model="model-primary", times=1)
    with pytest.raises(InvalidRequestError) as info:
        await manager.chat("hi")
    assert models_seen(sim) == ["model-primary"]
    assert info.value.status_code == 400 and "temperature" in str(info.value)
    assert [a.deployment for a in info.value.attempts] == ["primary"]
    await manager.cleanup()


async def test_context_overflow_moves_to_the_bigger_route(sim, make_manager):
    manager = make_manager(
        {"small": {"model": "small-8k"}, "big": {"model": "big-1m"}, "backup": {"model": "model-backup"}},
        models={"chat": {"targets": ["small"], "context_fallback": "long"}, "long": {"targets": ["big"]}},
        fallback_chain=["backup"],
    )
    sim.fault("openai", Fault.context_length_exceeded(limit=8192), model="small-8k", times=1)
    response = await manager.chat("a very long prompt", model="chat")
    assert response.model == "big-1m"
    assert [a.error_type for a in response.attempts] == ["TokenLimitError", None]
    assert models_seen(sim) == ["small-8k", "big-1m"]
    await manager.cleanup()


async def test_deadline_moves_on_at_once_when_retry_after_is_too_long(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], request_timeout=20)
    sim.fault("openai", Fault.rate_limited(retry_after=60), model="model-primary", times=None)
    started = time.monotonic()
    response = await manager.chat("hi")
    assert time.monotonic() - started < 1.0
    assert response.model == "model-backup"
    assert models_seen(sim) == ["model-primary", "model-backup"]
    await manager.cleanup()


async def test_every_candidate_failing_raises_one_error_listing_all_attempts(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 1,
                                                                             "initial_backoff": 0.01})
    sim.fault("openai", Fault.unavailable(), times=None)
    with pytest.raises(AllProvidersFailedError) as info:
        await manager.chat("hi")
    error = info.value
    assert len(error.errors) == 4 and all(isinstance(e, ServiceUnavailableError) for e in error.errors)
    assert [a.deployment for a in error.attempts] == ["primary", "primary", "backup", "backup"]
    assert error.status_code == 503 and error.retryable
    assert "all 4 attempts failed" in str(error)
    await manager.cleanup()


async def test_fallback_false_keeps_to_the_named_provider(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0})
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=None)
    with pytest.raises(ServiceUnavailableError):
        await manager.chat("hi", provider="primary", fallback=False)
    response = await manager.chat("hi", provider="primary")  # the documented default falls back
    assert response.model == "model-backup"
    await manager.cleanup()


async def test_keys_never_appear_in_errors_or_status(sim, make_manager, keys, key_suffix):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.fault("openai", Fault.unauthorized(), times=None)
    with pytest.raises(AllProvidersFailedError) as info:
        await manager.chat("hi")
    assert all(isinstance(e, AuthenticationError) for e in info.value.errors)
    texts = [str(info.value), repr(info.value), repr(info.value.attempts), str(manager.get_status()),
             repr(manager), repr(manager.router.deployments)]
    for key in keys.values():
        assert all(key not in text for text in texts)
    assert sim.last_request("openai").headers["authorization"] == "Bearer " + key_suffix("backup")
    await manager.cleanup()


async def test_embeddings_through_the_manager_carry_the_attempt_trace(sim, make_manager):
    manager = make_manager({"primary": {"model": "text-embedding-3-small"}}, retry={"max_retries": 1})
    sim.fault("openai", Fault.unavailable(), endpoint="embeddings", times=1)
    response = await manager.embed(["a", "b"])
    assert len(response.embeddings) == 2 and response.dimensions > 0
    assert [a.error_type for a in response.attempts] == ["ServiceUnavailableError", None]
    assert response.deployment == "primary"
    await manager.cleanup()
