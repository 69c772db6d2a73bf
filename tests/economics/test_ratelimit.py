"""Rate limits per deployment: windows and buckets, wait or fail, token reservations, 429 cool-downs, headers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from spoon_llm.config.models import ProviderConfig
from spoon_llm.errors import RateLimitError, StateStoreError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import AttemptContext, RateLimitMiddleware
from spoon_llm.ratelimit import LimitSettings, RateLimiter, parse_duration, parse_rate_limit_headers
from spoon_llm.state import MemoryStore
from spoon_llm.state.redis import RedisStore
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage
from spoon_llm.types import TokenUsage


def deployment(name: str = "openai#k1", **config: Any) -> Any:
    """The parts of a DeploymentState the limiter reads."""
    return SimpleNamespace(name=name, provider_name="openai", provider_type="openai", model="gpt-4o",
                           key_alias="k1", config=ProviderConfig(name="openai", **config))


def limiter(**settings: Any) -> RateLimiter:
    return RateLimiter(MemoryStore(), settings=LimitSettings(**settings))


async def hook(pending: Awaitable[None] | None) -> None:
    """Run a middleware hook as the manager does: await only what it returned."""
    if pending is not None:
        await pending


async def test_fail_fast_with_retry_after() -> None:
    rl = limiter(rpm=2, on_limit="fail")
    d = deployment()
    await rl.acquire(d)
    await rl.acquire(d)
    with pytest.raises(RateLimitError) as info:
        await rl.acquire(d)
    assert 59 < info.value.retry_after <= 60 and info.value.retryable is False
    assert info.value.status_code is None  # ours, not the provider's
    assert rl.status()["deployments"]["openai#k1"]["refused"] == 1


async def test_wait_mode_waits_a_bounded_time() -> None:
    rl = limiter(rpm=2, window=0.3, on_limit="wait", max_wait=1.0)
    d = deployment()
    started = time.monotonic()
    for _ in range(3):
        await rl.acquire(d)
    assert 0.25 <= time.monotonic() - started < 1.0
    bounded = limiter(rpm=1, window=5, on_limit="wait", max_wait=0.2)
    await bounded.acquire(d)
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        await bounded.acquire(d)  # would need ~5 s: refused at once rather than after max_wait
    assert time.monotonic() - started < 0.2


async def test_requests_per_hour() -> None:
    rl = limiter(rph=3, on_limit="fail")
    d = deployment()
    for _ in range(3):
        await rl.acquire(d)
    with pytest.raises(RateLimitError, match="rph limit 3"):
        await rl.acquire(d)


async def test_tokens_are_reserved_then_settled_or_refunded() -> None:
    rl = limiter(tpm=1000, output_tpm=900, on_limit="fail")
    d = deployment()
    first = await rl.acquire(d, input_tokens=100, output_tokens=800)
    with pytest.raises(RateLimitError, match="tpm limit 1000"):
        await rl.acquire(d, input_tokens=100, output_tokens=800)
    await rl.settle(first, TokenUsage(input_tokens=50, output_tokens=20))  # it used far less
    second = await rl.acquire(d, input_tokens=100, output_tokens=800)
    with pytest.raises(RateLimitError):
        await rl.acquire(d, input_tokens=100, output_tokens=800)
    await rl.refund(second)  # it failed: everything back
    await rl.acquire(d, input_tokens=100, output_tokens=800)


async def test_token_bucket_allows_a_burst_then_paces() -> None:
    rl = limiter(rpm=60, burst=2, window=6, strategy="token_bucket", on_limit="fail")  # 10 per second
    d = deployment()
    await rl.acquire(d)
    await rl.acquire(d)
    with pytest.raises(RateLimitError) as info:
        await rl.acquire(d)
    assert 0 < info.value.retry_after <= 0.11
    await asyncio.sleep(info.value.retry_after)
    await rl.acquire(d)


async def test_limits_come_from_the_deployment_config() -> None:
    rl = RateLimiter(MemoryStore())
    d = deployment(rpm=1, tpm=500, rph=10)
    settings = rl.settings_for(d)
    assert (settings.rpm, settings.tpm, settings.rph, settings.strategy) == (1, 500, 10, "sliding_window")


def test_durations_and_headers_parse() -> None:
    assert parse_duration("6m0s") == 360 and parse_duration("59.5s") == 59.5 and parse_duration("20ms") == 0.02
    assert parse_duration("1h2m3s") == 3723 and parse_duration("7") == 7 and parse_duration("soon") is None
    openai = parse_rate_limit_headers({"X-RateLimit-Limit-Requests": "500", "x-ratelimit-remaining-requests": "3",
                                       "x-ratelimit-reset-requests": "1m", "x-ratelimit-remaining-tokens": "900",
                                       "x-ratelimit-reset-tokens": "250ms", "retry-after-ms": "1500"})
    assert (openai.requests_limit, openai.requests_remaining, openai.requests_reset) == (500, 3, 60)
    assert (openai.tokens_remaining, openai.tokens_reset, openai.retry_after) == (900, 0.25, 1.5)
    now = 1_750_000_000.0
    anthropic = parse_rate_limit_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "7",
        "anthropic-ratelimit-requests-reset": "2025-06-15T15:07:00Z",
        "anthropic-ratelimit-tokens-remaining": "40000", "anthropic-ratelimit-input-tokens-remaining": "1200",
        "anthropic-ratelimit-input-tokens-reset": "2025-06-15T15:06:50Z", "retry-after": "3"}, now=now)
    assert (anthropic.requests_remaining, anthropic.requests_reset) == (7, 20.0)
    assert (anthropic.tokens_remaining, anthropic.tokens_reset, anthropic.retry_after) == (1200, 10.0, 3.0)


async def test_a_key_near_exhaustion_is_paced_before_any_429() -> None:
    rl = limiter(on_limit="fail")
    d = deployment()
    rl.observe(d, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-reset-requests": "2s"})
    with pytest.raises(RateLimitError, match="nearly exhausted") as info:
        await rl.acquire(d)
    assert 1.5 < info.value.retry_after <= 2
    # 5 of 100 left for 1 s: requests are spread out (~1/6 s apart) instead of sent at once.
    rl.observe(d, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "5",
                   "x-ratelimit-reset-requests": "1s"})
    await rl.acquire(d)
    with pytest.raises(RateLimitError) as spaced:
        await rl.acquire(d)
    assert 0.1 < spaced.value.retry_after < 0.25
    # Token headers: a request needing more than what is left waits for the reset.
    other = deployment("openai#k2")
    rl.observe(other, {"x-ratelimit-remaining-tokens": "50", "x-ratelimit-reset-tokens": "3s",
                       "x-ratelimit-remaining-requests": "99"})
    with pytest.raises(RateLimitError):
        await rl.acquire(other, input_tokens=40, output_tokens=100)
    await rl.acquire(other, input_tokens=10, output_tokens=10)


async def test_headers_reach_the_limiter_through_the_middleware() -> None:
    rl = limiter(on_limit="fail")
    middleware = RateLimitMiddleware(rl)
    d = deployment()
    ctx = AttemptContext("req-1", "chat", d, None, None, {})
    assert middleware.before_attempt(ctx) is None  # type: ignore[arg-type]  # room in memory: nothing to await
    response = SimpleNamespace(metadata={"rate_limit_headers": {"anthropic-ratelimit-requests-remaining": "0",
                                                                "anthropic-ratelimit-requests-reset": "30"}})
    await hook(middleware.after_attempt(ctx, response=response, usage=TokenUsage()))  # type: ignore[arg-type]
    with pytest.raises(RateLimitError):
        await hook(middleware.before_attempt(ctx))  # type: ignore[arg-type]
    assert middleware.status()["deployments"]["openai#k1"]["provider_headers"]["requests_remaining"] == 0


async def test_provider_429_cools_the_key_down_and_traffic_moves(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager], keys: dict[str, str]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=5, output_tokens=5)))
    sim.fault("openai", Fault.rate_limited(retry_after=30), model="m1", times=1)
    rl = RateLimiter(MemoryStore(), settings=LimitSettings(on_limit="fail"))
    manager = make_manager({"openai": {"api_keys": [{"api_key": keys["k1"], "alias": "k1", "model": "m1"},
                                                    {"api_key": keys["k2"], "alias": "k2", "model": "m2"}]}},
                           middleware=[RateLimitMiddleware(rl)])
    try:
        for _ in range(4):
            response = await manager.chat("hi")
            assert response.deployment == "openai#k2"
    finally:
        await manager.cleanup()
    assert len(sim.requests_for("openai")) == 5  # one 429 on k1, then every request straight to k2
    status = rl.status()["deployments"]
    # Keys take turns: k1 comes first on every other request and is refused locally while it cools down.
    assert status["openai#k1"]["cooldowns"] == 1 and status["openai#k1"]["refused"] == 1
    assert manager.get_provider_status()["openai#k1"]["circuit"]["state"] == "closed"


async def test_local_refusals_fall_back_without_hurting_the_key(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager], keys: dict[str, str]) -> None:
    rl = RateLimiter(MemoryStore(), policy=None)
    manager = make_manager({"openai": {"api_keys": [{"api_key": keys["k1"], "alias": "k1", "rpm": 2},
                                                    {"api_key": keys["k2"], "alias": "k2"}],
                                       "model": "gpt-4o-mini"}},
                           middleware=[RateLimitMiddleware(rl)], rate_limits={"on_limit": "fail"})
    rl.policy = manager.config_manager.config.rate_limits
    try:
        served = [(await manager.chat("hi")).deployment for _ in range(6)]
    finally:
        await manager.cleanup()
    assert served.count("openai#k1") == 2 and served.count("openai#k2") == 4
    k1 = manager.get_provider_status()["openai#k1"]
    assert k1["failures"] == 0 and k1["circuit"]["state"] == "closed"


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_unreachable_redis_fails_closed_or_open_loudly(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    rl = RateLimiter(store, settings=LimitSettings(rpm=10), fail_mode=mode)  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR, "spoon_llm.ratelimit")
    try:
        if mode == "closed":
            with pytest.raises(StateStoreError, match="store unreachable"):  # not over a limit: no store
                await rl.acquire(deployment())
        else:
            permit = await rl.acquire(deployment())
            assert permit.holds == []
        status = rl.status()
        assert status["degraded"] and status["store_failures"] == 1 and status["fail_mode"] == mode
        assert any("unreachable" in r.getMessage() and mode in r.getMessage() for r in caplog.records)
    finally:
        await store.close()
