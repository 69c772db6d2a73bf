"""A manager on Redis state under load and through a Redis outage, against a real redis-server.

* 500 concurrent requests through the default middleware (rate limit, budget, cost ledger, shared circuits)
  all succeed: the pool is sized by ``[state] redis_max_connections`` and waits for a free connection rather
  than failing with "Too many connections";
* Redis stopped mid-run: with ``fail_mode = "open"`` every request is served; with ``"closed"`` requests are
  refused with an ``LLMError`` whose cause is the typed :class:`StateStoreError`, never an untyped exception;
* a Redis that accepts connections and never answers does not hold a request past the store's timeouts;
* a ledger write that fails after the upstream answered never costs the caller the answer: it is buffered and
  written once Redis is back.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.redis_server import RedisServer

from spoon_llm import ConfigurationManager
from spoon_llm.config.sources import ConfigWarning
from spoon_llm.errors import LLMError, StateStoreError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import build_middleware, close_middleware
from spoon_llm.state.base import NOT_HELD
from spoon_llm.state.redis import RedisStore
from spoon_llm.testing import ProviderSimulator, Reply, Usage

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (Debian: apt-get install -y redis-server)")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, max_clients=4000)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def _config(sim: ProviderSimulator, url: str, **state: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"api_key": "sk-test-redis-state-000001", "base_url": sim.openai_base_url,
                                 "model": "redis-model", "max_connections": 600, "rpm": 100_000}},
        "pricing": {"redis-model": {"input_per_1m": 1.0, "output_per_1m": 1.0}},
        "budget": {"limit": 1000.0},
        "retry": {"max_retries": 0},
        "state": {"backend": "redis", "url": url, "key_prefix": f"rel{time.monotonic_ns()}", **state},
    }


@pytest.fixture
async def make_manager() -> AsyncIterator[Any]:
    made: list[tuple[LLMManager, list[Any]]] = []

    async def make(data: dict[str, Any]) -> LLMManager:
        config = ConfigurationManager(data, env={})
        with warnings.catch_warnings():  # the budget middleware is added right below, with the manager's events
            warnings.simplefilter("ignore", ConfigWarning)
            manager = LLMManager(config, default_middleware=False)
        chain = build_middleware(config, events=manager.events)
        for middleware in chain:
            manager.add_middleware(middleware)
        made.append((manager, chain))
        return manager

    yield make
    for manager, chain in made:
        await manager.cleanup()
        await close_middleware(chain)


async def _outcomes(manager: LLMManager, count: int) -> list[Any]:
    async def one() -> Any:
        try:
            return (await manager.chat("hello", max_tokens=5)).content
        except LLMError as exc:
            return exc

    return await asyncio.gather(*(one() for _ in range(count)))


async def test_500_concurrent_requests_on_redis_all_succeed(sim: ProviderSimulator, redis: RedisServer,
                                                            make_manager: Any) -> None:
    sim.reset()
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=1)))
    manager = await make_manager(_config(sim, redis.url, redis_max_connections=32))
    outcomes = await _outcomes(manager, 500)
    failures = [repr(o) for o in outcomes if not isinstance(o, str)]
    assert failures == []
    assert outcomes == ["ok"] * 500


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
async def test_redis_stopped_mid_run(sim: ProviderSimulator, redis: RedisServer, make_manager: Any,
                                     fail_mode: str) -> None:
    sim.reset()
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=1)))
    manager = await make_manager(_config(sim, redis.url, fail_mode=fail_mode, timeout=0.5, redis_pool_timeout=1.0))
    assert await _outcomes(manager, 50) == ["ok"] * 50
    redis.stop()
    started = time.monotonic()
    outcomes = await _outcomes(manager, 50)
    elapsed = time.monotonic() - started
    if fail_mode == "open":
        assert [o if isinstance(o, str) else repr(o) for o in outcomes] == ["ok"] * 50
    else:
        assert all(isinstance(o, LLMError) for o in outcomes), outcomes
        for error in outcomes:  # the store's typed error is what refused it, at the top or as the cause
            chain = [error, *getattr(error, "errors", [])]
            assert any(isinstance(e, StateStoreError) or isinstance(e.__cause__, StateStoreError)
                       for e in chain), repr(error)
    assert elapsed < 30  # refused or served within a few store timeouts, not hung


async def test_a_silent_redis_does_not_hang_a_request() -> None:
    # A server that accepts connections and never says a word.
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.3, pool_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(StateStoreError):
            await asyncio.wait_for(store.reserve("x", 1, 10), 20)
        assert time.monotonic() - started < 10
        store.fail_mode = "open"
        assert await asyncio.wait_for(store.reserve("x", 1, 10), 20) == (True, NOT_HELD)  # admitted, not held
        assert store.status()["fail_decisions"] == {"open": 1, "closed": 1}
    finally:
        await store.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_failed_ledger_write_keeps_the_answer_and_the_record(redis: RedisServer) -> None:
    store = RedisStore(redis.url, prefix=f"ledger{time.monotonic_ns()}", timeout=0.3, pool_timeout=0.3)
    try:
        await store.append("usage", {"ts": 1.0, "i": 1})
        redis.stop()
        await store.append("usage", {"ts": 2.0, "i": 2})  # never raises: buffered
        assert store.status()["ledger_backlog"] == 1
        redis.start()  # same port: the pool reconnects
        await store.append("usage", {"ts": 3.0, "i": 3})
        # (the restarted server kept nothing: record 1 went with the old one; 2 and 3 are written in order)
        assert [r["i"] for r in await store.records("usage")] == [2, 3]
        assert store.status()["ledger_backlog"] == 0
    finally:
        await store.close()


async def test_ledger_records_from_the_request_path_are_written_behind_in_one_pipeline(redis: RedisServer) -> None:
    import redis.asyncio as aioredis

    prefix = f"behind{time.monotonic_ns()}"
    store = RedisStore(redis.url, prefix=prefix)
    reader = aioredis.from_url(redis.url)
    try:
        # Appended without waiting (what concurrent requests do): one background write takes them all.
        assert all(store.append_nowait("usage", {"ts": float(i), "i": i}) is None for i in range(50))
        assert store.status()["ledger_backlog"] == 50
        assert [r["i"] for r in await store.records("usage")] == list(range(50))  # records() waits for it
        assert store.status()["ledger_backlog"] == 0
        # close() writes what is still buffered; another client sees every record in order.
        for i in range(50, 60):
            store.append_nowait("usage", {"ts": float(i), "i": i})
        await store.close()
        rows = await reader.lrange(f"{prefix}:ledger:usage", 0, -1)
        assert [int(r.split(b'"i":')[1].rstrip(b"}")) for r in rows] == list(range(60))
    finally:
        await store.close()
        await reader.aclose()


async def test_ledger_write_behind_keeps_records_while_the_server_is_down(redis: RedisServer) -> None:
    store = RedisStore(redis.url, prefix=f"behinddown{time.monotonic_ns()}", timeout=0.3, pool_timeout=0.3)
    try:
        redis.stop()
        store.append_nowait("usage", {"ts": 1.0, "i": 1})
        await asyncio.sleep(0)  # the background write starts, fails, keeps the record for a retry
        while store._flush is not None and not store._flush.done():
            await asyncio.sleep(0.05)
        assert store.status()["ledger_backlog"] == 1
        redis.start()
        assert [r["i"] for r in await store.records("usage")] == [1]
    finally:
        await store.close()


async def test_ledger_records_read_back_as_written_across_lists(redis: RedisServer) -> None:
    # Records of two tables interleaved go out as one list push each, in order; what JSON has no type for is
    # written as its str(), and a record orjson refuses (a non-string key) is still written.
    from datetime import date, datetime
    from decimal import Decimal

    store = RedisStore(redis.url, prefix=f"encode{time.monotonic_ns()}")
    try:
        for i in range(30):
            store.append_nowait("usage" if i % 3 else "audit", {"ts": float(i), "i": i, "who": "Zoë ✓"})
        store.append_nowait("usage", {"ts": 30.0, "i": 30, "price": Decimal("0.25"), "day": date(2026, 1, 2),
                                       "at": datetime(2026, 1, 2, 3, 4, 5)})
        store.append_nowait("usage", {"ts": 31.0, "i": 31, 7: "seven"})
        usage = await store.records("usage")
        assert [r["i"] for r in usage] == [i for i in range(32) if i % 3 or i > 29]
        assert [r["i"] for r in await store.records("audit")] == [i for i in range(30) if not i % 3]
        assert usage[0]["who"] == "Zoë ✓"
        assert (usage[-2]["price"], usage[-2]["day"], usage[-2]["at"]) == ("0.25", "2026-01-02",
                                                                          "2026-01-02 03:04:05")
        assert usage[-1]["7"] == "seven"
        assert await store.records("usage", since=30.0) == usage[-2:]
    finally:
        await store.close()
