"""1,000 requests cancelled at random points give back everything they held, on memory, SQLite and Redis.

Each run sends ``chat`` and ``chat_stream`` requests through the default middleware (budget guard with a worst-case
reservation, rate limiter with a token hold, cost accounting) to a primary that fails now and then (so retries and
fallbacks happen) and a backup, both slow enough that requests are in flight when they are cancelled. Every
answer reports zero tokens, so once everything has settled or been released the stores must read zero: any
reservation or token hold left behind shows. Afterwards:

* no request is in flight (manager and deployments) and no circuit holds a probe;
* the budget store holds no reservation and the token window no hold (both read back from the store, once
  ``BudgetManager.flush`` has waited for the releases still under way and what a busy store kept for later);
* ``get_stats()`` accounts for every request once (success, failure or cancellation), every cancelled
  ``chat`` included;
* the simulator sees every connection closed once the manager is closed;
* asyncio reports no task destroyed while pending and no coroutine never awaited (it warns of both outside
  debug mode too); one run of 200 requests in asyncio's debug mode also finds no warning of its own (unclosed
  transports, exceptions never retrieved) besides its time-based slow-callback reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.redis_server import RedisServer

from spoon_llm import ConfigurationManager
from spoon_llm.errors import LLMError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware.budget import BudgetMiddleware
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

TASKS = 1000
WINDOW = 60.0
TPM = 10_000_000


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def _config(sim: ProviderSimulator, backend: str, tmp_path: Path, url: str | None) -> dict[str, Any]:
    section = {"type": "openai", "base_url": sim.openai_base_url, "max_connections": 400, "tpm": TPM,
               "rpm": 1_000_000}
    # The budget ledger is SQLite unless the backend is Redis: a file of this test's own.
    state: dict[str, Any] = {"backend": backend, "key_prefix": f"cancel{time.monotonic_ns()}",
                             "path": str(tmp_path / "state.db")}
    if url is not None:
        state["url"] = url
    return {
        "providers": {
            "primary": {**section, "api_key": "sk-test-cancel-primary-000001", "model": "model-primary"},
            "backup": {**section, "api_key": "sk-test-cancel-backup-0000001", "model": "model-backup"},
        },
        "fallback_chain": ["primary", "backup"],
        "pricing": {m: {"input_per_1m": 1.0, "output_per_1m": 1.0} for m in ("model-primary", "model-backup")},
        "budget": {"limit": 1000.0, "per_provider": {"primary": 500.0}},
        "retry": {"max_retries": 1, "initial_backoff": 0.001, "max_backoff": 0.005},
        "state": state,
    }


def _faults(sim: ProviderSimulator) -> None:
    sim.reset()
    sim.script(None, Reply(text="one two three four five six", usage=Usage(input_tokens=0, output_tokens=0),
                           chunks=["one ", "two ", "three ", "four ", "five ", "six"]))
    sim.fault("openai", Fault.server_error(), model="model-primary", times=None, probability=0.2, seed=14)
    sim.fault("openai", Fault.connection_reset(), model="model-primary", times=None, probability=0.05, seed=15)
    sim.fault("openai", Fault(delay=0.004, chunk_delay=0.002), times=None)


async def _one(manager: LLMManager, index: int) -> str:
    if index % 2:
        response = await manager.chat(f"request {index}", max_tokens=20)
        return response.content
    text = ""
    async with contextlib.aclosing(manager.chat_stream(f"request {index}", max_tokens=20)) as stream:
        # Half the streams are left after their second chunk: closed early by the caller.
        count = 0
        async for chunk in stream:
            text = chunk.content
            count += 1
            if index % 4 == 0 and count == 2:
                break
    return text


async def _cancel_after_turns(task: asyncio.Task[Any], turns: int) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()


async def _until(condition: Any, limit: float = 60.0) -> None:
    """Wait for ``condition`` (an event, not a duration: the limit only stops a broken run)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + limit
    while not condition():
        assert loop.time() < ends, "the condition never became true"
        await asyncio.sleep(0.01)


async def _token_window_is_empty(manager: LLMManager, deployment: str) -> bool:
    # An amount equal to the limit is admitted only into a window holding nothing (then handed straight back).
    limiter = next(m for m in manager.middleware if m.name == "rate_limit")
    store = limiter.limiter.store
    key = f"rl:{deployment}:tpm"
    ok, _ = await store.window_acquire(key, "cancellation-test-probe", TPM, TPM, WINDOW)
    if ok:
        await store.window_adjust(key, "cancellation-test-probe", -TPM)
    return bool(ok)


@pytest.mark.parametrize(("backend", "debug"), [("memory", False), ("sqlite", False), ("redis", False),
                                              ("memory", True)],
                         ids=["memory", "sqlite", "redis", "memory-asyncio-debug"])
async def test_cancelled_requests_release_everything(sim: ProviderSimulator, backend: str, debug: bool,
                                                     tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``debug``: the loop in asyncio's debug mode (fewer tasks: it is several times slower), where it also reports
    resources left unclosed and exceptions never retrieved; its slow-callback reports measure time, not faults, and
    are not counted."""
    if backend == "redis" and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = RedisServer(tmp_path, max_clients=4000) if backend == "redis" else None
    if redis is not None:
        redis.start()
    loop = asyncio.get_running_loop()
    count = 200 if debug else TASKS
    was_debug = loop.get_debug()
    loop.set_debug(debug or was_debug)
    manager = LLMManager(ConfigurationManager(_config(sim, backend, tmp_path, redis and redis.url), env={}))
    try:
        _faults(sim)
        assert await _one(manager, 1) and await _one(manager, 2)  # warm: clients built, stores open
        rng = random.Random(1014)
        with caplog.at_level(logging.WARNING, logger="asyncio"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tasks = [asyncio.create_task(_one(manager, i)) for i in range(count)]
            # A random point in each request's life, from before it starts to after it ends: half after a number
            # of event-loop turns, half after a time (how far each request got by then depends on the machine,
            # which only moves the points, not what must hold afterwards).
            cancellers = [asyncio.create_task(_cancel_after_turns(task, rng.randrange(400))) for task in tasks[::2]]
            for task in tasks[1::2]:
                loop.call_later(rng.uniform(0.0, 2.0), task.cancel)
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*cancellers)
        budget = next(m for m in manager.middleware if isinstance(m, BudgetMiddleware))
        # Releases of cancelled requests run on after them, and a store that was busy keeps some to apply later:
        # wait for both (an event, however slow the machine), then read what the stores hold.
        await budget.budgets.flush()
        cancelled = [i for i, o in enumerate(outcomes) if isinstance(o, asyncio.CancelledError)]
        untyped = [o for o in outcomes if isinstance(o, BaseException)
                   and not isinstance(o, (asyncio.CancelledError, LLMError))]
        assert untyped == []
        assert cancelled

        stats = manager.get_stats()
        assert stats["inflight"] == 0
        assert stats["requests"] == stats["successes"] + stats["failures"] + stats["cancelled"], stats
        assert stats["cancelled"] >= sum(1 for i in cancelled if i % 2), stats  # every cancelled chat
        for name, status in manager.get_provider_status().items():
            assert status["inflight"] == 0, name
            assert status["circuit"]["probe_in_flight"] is False, name

        snapshot = await budget.budgets.snapshot()
        assert snapshot and all(entry["reserved"] == 0 for entry in snapshot.values()), (stats, snapshot)
        for deployment in ("primary", "backup"):
            assert await _token_window_is_empty(manager, deployment), deployment

        problems = [r.getMessage() for r in caplog.records
                    if "destroyed but it is pending" in r.getMessage() or "never awaited" in r.getMessage()]
        problems += [str(w.message) for w in caught if "never awaited" in str(w.message)]
        if debug:
            problems += [r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.WARNING
                         and not r.getMessage().startswith("Executing ")]  # "Executing <Handle> took 0.1 s": time
            problems += [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert problems == []
    finally:
        loop.set_debug(was_debug)
        await manager.cleanup()
        if redis is not None:
            redis.stop()
    await _until(lambda: sim.open_connections == 0)
