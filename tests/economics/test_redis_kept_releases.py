"""A budget release or settle that finds no Redis connection free is kept and applied later, exactly once.

The store's pool has one connection, held by a blocking ``BLPOP`` while requests give their reservations back:
every write waits out the pool timeout ("No connection available"). Nothing may be lost: once the connection is
free again, :meth:`BudgetManager.flush` applies what was kept and the budget holds no reservation, and spend counts
each settled request once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from _support.redis_pool import BLOCK_LIST, hold_the_connection

from spoon_llm.costs import Budget, BudgetManager
from spoon_llm.state.redis import RedisStore


@pytest.fixture
async def starved(redis_server: str, redis_prefix: str) -> AsyncIterator[tuple[RedisStore, Any]]:
    """A store whose pool has one connection and gives up waiting for it after 50 ms."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_server, max_connections=1, timeout=0.05)
    client = aioredis.Redis.from_pool(pool)
    store = RedisStore(redis_server, prefix=redis_prefix, client=client)
    try:
        yield store, client
    finally:
        await store.close()
        await client.aclose()


async def test_releases_and_settles_without_a_connection_are_applied_once_it_is_back(
        starved: tuple[RedisStore, Any], redis_server: str, redis_prefix: str) -> None:
    store, client = starved
    budgets = BudgetManager(store, [Budget("global", 100.0)])
    held = [await budgets.reserve(1.0, provider="p") for _ in range(40)]
    assert (await budgets.snapshot())["global"]["reserved"] == 40.0

    blocker, observer = await hold_the_connection(client, redis_server)
    try:
        # Half given back unused, half settled at a quarter of the hold: all at once, none finds a connection.
        await asyncio.gather(*(budgets.release(r) if i % 2 else budgets.settle(r, 0.25)
                               for i, r in enumerate(held)))
        assert store.status()["pending_adds"] == 40
        assert store.failures >= 40
        # Nothing was applied yet (another client reads the server).
        other = RedisStore(redis_server, prefix=redis_prefix)
        try:
            committed = await other.get("budget:global:all:committed")
            assert committed == 40 * 1_000_000_000
        finally:
            await other.close()
    finally:
        await observer.rpush(BLOCK_LIST, "go")  # the BLPOP returns its connection to the pool
        await blocker
        await observer.aclose()

    await budgets.flush()
    assert store.status()["pending_adds"] == 0
    snapshot = (await budgets.snapshot())["global"]
    assert snapshot["reserved"] == 0
    assert snapshot["spent"] == pytest.approx(20 * 0.25)
    await budgets.flush()  # nothing kept: nothing applied twice
    assert (await budgets.snapshot())["global"] == snapshot


async def test_kept_adds_are_applied_by_the_retry_without_a_flush(starved: tuple[RedisStore, Any],
                                                                   redis_server: str) -> None:
    store, client = starved
    budgets = BudgetManager(store, [Budget("global", 100.0)])
    held = [await budgets.reserve(2.0, provider="p") for _ in range(5)]
    blocker, observer = await hold_the_connection(client, redis_server)
    try:
        await asyncio.gather(*(budgets.release(r) for r in held))
        assert store.status()["pending_adds"] == 5
    finally:
        await observer.rpush(BLOCK_LIST, "go")
        await blocker
        await observer.aclose()
    loop = asyncio.get_running_loop()
    ends = loop.time() + 60  # an event to wait for, not a duration: the limit only stops a broken run
    while store.status()["pending_adds"]:
        assert loop.time() < ends, "the kept releases were never applied"
        await asyncio.sleep(0.05)
    assert (await budgets.snapshot())["global"]["reserved"] == 0


async def test_an_add_resent_after_it_was_applied_counts_once(redis_server: str, redis_prefix: str) -> None:
    # The same marker twice is what a retry after a lost answer sends: the second changes nothing.
    raw = aioredis.Redis.from_url(redis_server)
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        assert await store.add_eventually({"c": 5, "d": 1}) == [5, 1]
        assert await store.add_eventually({"c": 5}) == [10]
        script = raw.register_script(_script_source("_ADD_ONCE"))
        keys = [f"{redis_prefix}:once:test-marker", f"{redis_prefix}:c"]
        assert await script(keys=keys, args=[60_000, 0, 3]) == [13]
        assert await script(keys=keys, args=[60_000, 0, 3]) == [13]  # resent: read, not added
        assert await store.get("c") == 13
    finally:
        await store.close()
        await raw.aclose()


async def test_a_reservation_resent_after_it_was_admitted_is_held_once(redis_server: str, redis_prefix: str) -> None:
    # A resend carries the first send's marker: it answers what the first did and reserves nothing more.
    raw = aioredis.Redis.from_url(redis_server)
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        script = raw.register_script(_script_source("_RESERVE"))
        keys = [f"{redis_prefix}:r", f"{redis_prefix}:n", f"{redis_prefix}:once:test-reserve"]
        assert await script(keys=keys, args=[4, 10, 0, 1, 60_000]) == [1, 4]
        assert await script(keys=keys, args=[4, 10, 0, 1, 60_000]) == [1, 4]  # resent: nothing more held
        assert await store.get_many(["r", "n"]) == [4, 1]
        assert await store.reserve("r", 6, 10) == (True, 10)  # so the rest of the limit is still free
        assert await store.reserve("r", 1, 10) == (False, 10)
    finally:
        await store.close()
        await raw.aclose()


async def test_a_window_acquire_resent_after_it_was_admitted_counts_once(redis_server: str,
                                                                         redis_prefix: str) -> None:
    # redis-py resends a command whose answer timed out; the entry is already in the window then.
    store = RedisStore(redis_server, prefix=redis_prefix)
    try:
        assert (await store.window_acquire("w", "e1", 1, 2, 60))[0]
        assert (await store.window_acquire("w", "e1", 1, 2, 60))[0]  # the resend: admitted, not counted again
        assert (await store.window_acquire("w", "e2", 1, 2, 60))[0]  # so the second slot is still free
        assert not (await store.window_acquire("w", "e3", 1, 2, 60))[0]
    finally:
        await store.close()


def _script_source(name: str) -> str:
    from spoon_llm.state import redis as redis_store

    return str(getattr(redis_store, name))
