"""A Redis that accepts connections and never answers does not hold a request past the request's deadline.

``test_redis_state`` checks the store alone against such a server (its own timeouts end the wait). Here the store's
timeouts are long (30 s) and the request's deadline short (1 s): the request, with the default middleware on Redis
(rate limiter, budget, cost ledger), must end with an ``LLMError`` because of its deadline, far sooner than the
store's timeouts, with either ``fail_mode``. The time bound (20 s) is far above the deadline and far below the
store's 30 s: it catches a request held by the store, never a slow machine.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.config.sources import ConfigWarning
from spoon_llm.errors import LLMError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import build_middleware, close_middleware
from spoon_llm.testing import ProviderSimulator, Reply


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
async def test_a_silent_redis_does_not_hold_a_request_past_its_deadline(silent_redis: str, fail_mode: str) -> None:
    with ProviderSimulator() as sim:
        sim.script("openai", Reply(text="ok"))
        config = ConfigurationManager({
            "providers": {"openai": {"api_key": "sk-test-redis-silent-00001", "base_url": sim.openai_base_url,
                                     "model": "redis-model", "rpm": 100_000}},
            "pricing": {"redis-model": {"input_per_1m": 1.0, "output_per_1m": 1.0}},
            "budget": {"limit": 1000.0},
            "retry": {"max_retries": 0},
            "state": {"backend": "redis", "url": silent_redis, "fail_mode": fail_mode, "timeout": 30.0,
                      "redis_pool_timeout": 30.0},
        }, env={})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            manager = LLMManager(config, default_middleware=False)
        chain = build_middleware(config, events=manager.events)
        for middleware in chain:
            manager.add_middleware(middleware)
        outcomes: list[Any] = []
        try:
            started = time.monotonic()
            for call in (lambda: manager.chat("hi", deadline=1.0), lambda: _streamed(manager)):
                try:
                    outcomes.append(await asyncio.wait_for(call(), 60))
                except LLMError as exc:
                    outcomes.append(exc)
            elapsed = time.monotonic() - started
        finally:
            await manager.cleanup()
            await asyncio.wait_for(close_middleware(chain), 60)
    assert all(isinstance(o, LLMError) for o in outcomes), outcomes
    assert elapsed < 20, elapsed  # both ended by their 1 s deadlines, not the store's 30 s timeouts
    assert manager.get_stats()["inflight"] == 0


async def _streamed(manager: LLMManager) -> str:
    text = ""
    async for chunk in manager.chat_stream("hi", deadline=1.0):
        text = chunk.content
    return text
