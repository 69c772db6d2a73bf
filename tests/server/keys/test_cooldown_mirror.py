"""The Redis store's cool-down mirror: checks answered in-process, cool-downs set anywhere seen everywhere.

Two stores on one real redis-server stand for two replicas.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from spoon_llm.state.redis import RedisStore

pytestmark = pytest.mark.asyncio


async def _until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _commands(redis_url: str) -> int:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    info = subprocess.run(["redis-cli", "-p", port, "info", "commandstats"], capture_output=True, text=True,
                          check=True).stdout
    for line in info.splitlines():
        if line.startswith("cmdstat_pttl:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def test_checks_stop_reaching_redis_once_the_mirror_is_fresh(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        assert await store.cooldown_remaining("circuit:a") == 0.0  # starts the subscription, reads through
        await _until(lambda: store._cooldowns.generation() is not None)
        assert await store.cooldown_remaining("circuit:a") == 0.0  # read through once more, now kept
        before = _commands(redis_url)
        for _ in range(50):
            assert await store.cooldown_remaining("circuit:a") == 0.0
        assert _commands(redis_url) == before
    finally:
        await store.close()


async def test_a_cooldown_set_by_one_replica_is_seen_by_the_other(redis_url: str, redis_prefix: str) -> None:
    one = RedisStore(redis_url, prefix=redis_prefix)
    two = RedisStore(redis_url, prefix=redis_prefix)
    try:
        for store in (one, two):
            await store.cooldown_remaining("rl:openai")
        await _until(lambda: two._cooldowns.generation() is not None)
        assert await two.cooldown_remaining("rl:openai") == 0.0  # known: none
        await one.cooldown_set("rl:openai", 30.0)
        await _until(lambda: (two._cooldowns.remaining(f"{redis_prefix}:cooldown:rl:openai") or 0) > 0)
        left = await two.cooldown_remaining("rl:openai")
        assert 25.0 < left <= 30.0
        # A shorter cool-down does not shorten the one in force, here or in Redis.
        await one.cooldown_set("rl:openai", 1.0)
        await asyncio.sleep(0.1)
        assert await two.cooldown_remaining("rl:openai") > 25.0
    finally:
        await one.close()
        await two.close()


async def test_a_lost_subscription_reads_through(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    writer = RedisStore(redis_url, prefix=redis_prefix)
    try:
        await store.cooldown_remaining("circuit:b")
        await _until(lambda: store._cooldowns.generation() is not None)
        await store.cooldown_remaining("circuit:b")
        # Kill the subscriber's connection on the server; meanwhile a cool-down is set without it hearing.
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        subprocess.run(["redis-cli", "-p", port, "client", "kill", "type", "pubsub"], capture_output=True,
                       check=True)
        await writer._client.set(f"{redis_prefix}:cooldown:circuit:b", "1", px=20_000)  # not published
        generation = store._cooldowns._generation
        await _until(lambda: store._cooldowns._generation != generation)  # the loss was noticed
        assert await store.cooldown_remaining("circuit:b") > 15.0  # read through, not the stale "none"
    finally:
        await store.close()
        await writer.close()
