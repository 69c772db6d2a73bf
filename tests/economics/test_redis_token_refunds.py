"""Token settles and refunds on Redis (window and bucket adjusts) are applied exactly once.

A resend of the same change (redis-py retries a command whose answer was lost) is a no-op; a change that finds no
connection is kept and applied once the server answers again, and a limit without keys on the request path costs
no round trip. A real redis-server throughout.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from _support.redis_pool import BLOCK_LIST, hold_the_connection

from spoon_llm.config.models import ProviderConfig
from spoon_llm.errors import StateStoreError
from spoon_llm.ratelimit import LimitSettings, RateLimiter
from spoon_llm.state.redis import RedisStore
from spoon_llm.types import TokenUsage

pytestmark = pytest.mark.asyncio



def _deployment(name: str = "openai#k1") -> Any:
    """The parts of a DeploymentState the limiter reads."""
    return SimpleNamespace(name=name, provider_name="openai", provider_type="openai", model="gpt-4o",
                           key_alias="k1", config=ProviderConfig(name="openai"))


def _script_source(name: str) -> str:
    from spoon_llm.state import redis as redis_store

    return str(getattr(redis_store, name))


async def test_a_window_adjust_resent_after_it_was_applied_counts_once(redis_server: str,
                                                                        redis_prefix: str) -> None:
    raw = aioredis.Redis.from_url(redis_server)
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        assert (await store.window_acquire("w", "e1", 10, 20, 60))[0]
        script = raw.register_script(_script_source("_WINDOW_ADJUST"))
        base = f"{redis_prefix}:{{w}}"
        keys = [base + ":z", base + ":h", base + ":t", base + ":once:test-adjust"]
        assert await script(keys=keys, args=["e1", -6, 60_000]) == 1
        assert await script(keys=keys, args=["e1", -6, 60_000]) == 0  # resent: nothing refunded again
        assert int(await raw.hget(base + ":h", "e1")) == 4
        assert int(await raw.get(base + ":t")) == 4
        assert (await store.window_acquire("w", "e2", 16, 20, 60))[0]  # 4 + 16: exactly the limit
        assert not (await store.window_acquire("w", "e3", 1, 20, 60))[0]
    finally:
        await store.close()
        await raw.aclose()


async def test_a_bucket_adjust_resent_after_it_was_applied_counts_once(redis_server: str,
                                                                        redis_prefix: str) -> None:
    # One unit per 100 s: the few milliseconds between the steps do not matter.
    raw = aioredis.Redis.from_url(redis_server)
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        assert (await store.bucket_acquire("b", 10, 0.01, 10))[0]  # the bucket is 1000 s ahead
        script = raw.register_script(_script_source("_BUCKET_ADJUST"))
        keys = [f"{redis_prefix}:b", f"{redis_prefix}:once:test-adjust"]
        assert await script(keys=keys, args=["-5.0", "0.01", 60_000]) == 1  # 500 s ahead
        assert await script(keys=keys, args=["-5.0", "0.01", 60_000]) == 0  # resent: not given back twice
        # 6 more would put it 1100 s ahead, beyond the burst of 10 (1000 s): refused. Applied twice, the bucket
        # would be empty and admit them.
        assert not (await store.bucket_acquire("b", 6, 0.01, 10))[0]
        assert (await store.bucket_acquire("b", 5, 0.01, 10))[0]
    finally:
        await store.close()
        await raw.aclose()


@pytest.fixture
async def starved(redis_server: str, redis_prefix: str) -> AsyncIterator[tuple[RedisStore, Any]]:
    """A store whose pool has two connections, one for its cool-down subscription, and gives up waiting for the
    other after 50 ms."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_server, max_connections=2, timeout=0.05)
    client = aioredis.Redis.from_pool(pool)
    store = RedisStore(redis_server, prefix=redis_prefix, client=client)
    try:
        await store.cooldown_remaining("warm-up")  # starts the subscription, which keeps a connection
        loop = asyncio.get_running_loop()
        ends = loop.time() + 30  # an event to wait for, not a duration: the limit only stops a broken run
        while store._cooldowns.generation() is None:
            assert loop.time() < ends, "the cool-down subscription never started"
            await asyncio.sleep(0.01)
        yield store, client
    finally:
        await store.close()
        await client.aclose()


@pytest.mark.parametrize("strategy", ["sliding_window", "token_bucket"])
async def test_a_refund_without_a_connection_is_kept_and_applied_once(starved: tuple[RedisStore, Any],
                                                                      redis_server: str, strategy: str) -> None:
    store, client = starved
    # A window of a week: a bucket leaks nothing that matters while the test runs.
    settings = LimitSettings(tpm=1000, on_limit="fail", strategy=strategy, window=604_800.0)  # type: ignore[arg-type]
    limiter = RateLimiter(store, settings=settings)
    deployment = _deployment()
    settled = await limiter.acquire(deployment, input_tokens=100, output_tokens=300)
    refunded = await limiter.acquire(deployment, input_tokens=100, output_tokens=500)

    blocker, observer = await hold_the_connection(client, redis_server)
    try:
        # Neither finds a connection: kept (and, fail_mode closed, counted as a store failure by the limiter).
        await limiter.settle(settled, TokenUsage(input_tokens=100, output_tokens=0))  # 300 back
        await limiter.refund(refunded)  # 600 back
        assert store.status()["pending_adds"] == 2
        assert limiter.store_failures == 2
    finally:
        await observer.rpush(BLOCK_LIST, "go")  # the BLPOP returns its connection to the pool
        await blocker
        await observer.aclose()

    assert await store.flush() == 2
    assert store.status()["pending_adds"] == 0
    assert await store.flush() == 0  # nothing kept: nothing applied twice
    # 100 of the 1000 are still used (the settled call's input), so 900 fit and one more does not.
    with pytest.raises(Exception, match="tpm limit 1000"):
        await limiter.acquire(deployment, input_tokens=901, output_tokens=0)
    assert (await limiter.acquire(deployment, input_tokens=900, output_tokens=0)).holds


def _calls(redis_url: str) -> int:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    info = subprocess.run(["redis-cli", "-p", port, "info", "commandstats"], capture_output=True, text=True,
                          check=True).stdout
    return sum(int(line.split("calls=")[1].split(",")[0]) for line in info.splitlines()
               if line.startswith("cmdstat_") and "info" not in line)


async def test_a_key_without_limits_is_admitted_without_a_round_trip(redis_server: str, redis_prefix: str) -> None:
    store = RedisStore(redis_server, prefix=redis_prefix)
    other = RedisStore(redis_server, prefix=redis_prefix)
    limiter = RateLimiter(store, settings=LimitSettings())
    deployment = _deployment()
    try:
        assert limiter.acquire_now(deployment) is None  # the cool-down mirror is not fresh yet: ask the store
        await limiter.acquire(deployment)
        loop = asyncio.get_running_loop()
        ends = loop.time() + 30  # an event to wait for, not a duration: the limit only stops a broken run
        while limiter.acquire_now(deployment) is None:
            assert loop.time() < ends, "the cool-down mirror never answered"
            await limiter.acquire(deployment)
            await asyncio.sleep(0.01)
        before = _calls(redis_server)
        permits = [limiter.acquire_now(deployment) for _ in range(20)]
        assert all(p is not None and not p.holds and not p.slots for p in permits)
        assert _calls(redis_server) == before
        # A 429 seen by another replica cools the key down here too: no longer admitted in-process.
        await other.cooldown_set("rl:openai#k1", 30.0)
        while limiter.acquire_now(deployment) is not None:
            assert loop.time() < ends, "the cool-down never reached the mirror"
            await asyncio.sleep(0.01)
        with pytest.raises(Exception, match="cooling down"):
            await limiter.acquire(deployment)
    finally:
        await store.close()
        await other.close()


async def test_closed_fail_mode_still_refuses_when_a_give_back_fails(starved: tuple[RedisStore, Any],
                                                                     redis_server: str) -> None:
    # An unsent attempt's request slot cannot be given back: the change is kept, the failure still surfaces.
    store, client = starved
    limiter = RateLimiter(store, settings=LimitSettings(rpm=5, on_limit="fail"))
    permit = await limiter.acquire(_deployment())
    assert permit.slots
    blocker, observer = await hold_the_connection(client, redis_server)
    try:
        pending = limiter.unsend(permit)
        assert pending is not None
        await pending
        assert limiter.store_failures == 1
        with pytest.raises(StateStoreError):
            await store.window_adjust("rl:openai#k1:rpm", str(permit.entry), -1)
    finally:
        await observer.rpush(BLOCK_LIST, "go")
        await blocker
        await observer.aclose()
    assert await store.flush() == 2
    assert store.status()["pending_adds"] == 0
    for _ in range(5):  # the unsent attempt's slot is free again: five more fit in the minute, not six
        await limiter.acquire(_deployment())
    with pytest.raises(Exception, match="rpm limit 5"):
        await limiter.acquire(_deployment())
