"""A stream the caller drops without ``aclose()`` gives back everything it holds as soon as it is dropped.

In-flight counts (manager and deployment) return to zero and the request is counted cancelled once, with one
``request_end`` for the observers, before the event loop runs again (``__del__`` settles it synchronously); the
middleware's holds (budget reservation, rate-limit tokens) are released then too, or by store work it starts at
once; the provider's connection is closed by the generator's finalizer afterwards, which finds nothing left to
release.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.events import Event
from spoon_llm.manager import LLMManager
from spoon_llm.middleware.budget import BudgetMiddleware
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

TPM = 1_000_000
WINDOW = 60.0


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator() as simulator:
        yield simulator


def _manager(sim: ProviderSimulator, transport: str) -> LLMManager:
    section = {"type": "openai", "base_url": sim.openai_base_url, "tpm": TPM, "transport": transport}
    return LLMManager(ConfigurationManager({
        "providers": {
            "primary": {**section, "api_key": "sk-test-abandon-primary-00001", "model": "model-primary"},
            "backup": {**section, "api_key": "sk-test-abandon-backup-000001", "model": "model-backup"},
        },
        "fallback_chain": ["primary", "backup"],
        "pricing": {m: {"input_per_1m": 1.0, "output_per_1m": 1.0} for m in ("model-primary", "model-backup")},
        "budget": {"limit": 100.0},
        "retry": {"max_retries": 0},
    }, env={}))


async def _reserved(manager: LLMManager) -> float:
    budget = next(m for m in manager.middleware if isinstance(m, BudgetMiddleware))
    return float((await budget.budgets.snapshot())["global"]["reserved"])


async def _until(read: Any, value: float, turns: int = 1000) -> None:
    """Wait (in event-loop turns, not time) until ``await read()`` gives ``value``."""
    for _ in range(turns):
        if await read() == value:
            return
        await asyncio.sleep(0)
    assert await read() == value


async def _token_window_is_empty(manager: LLMManager, deployment: str) -> bool:
    # An amount equal to the limit is admitted only into a window holding nothing (then handed straight back).
    limiter = next(m for m in manager.middleware if m.name == "rate_limit")
    store = limiter.limiter.store  # type: ignore[attr-defined]
    key = f"rl:{deployment}:tpm"
    ok, _ = await store.window_acquire(key, "abandon-test-probe", TPM, TPM, WINDOW)
    if ok:
        await store.window_adjust(key, "abandon-test-probe", -TPM)
    return bool(ok)


@pytest.mark.parametrize("transport", ["native", "sdk"])
async def test_a_dropped_stream_releases_everything_at_once(sim: ProviderSimulator, transport: str) -> None:
    sim.script(None, Reply(text="one two three four", usage=Usage(input_tokens=0, output_tokens=0),
                           chunks=["one ", "two ", "three ", "four"]))
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)  # a fallback first: a run is held
    manager = _manager(sim, transport)
    ends: list[Event] = []
    manager.add_observer(lambda event: ends.append(event) if event.kind == "request_end" else None)
    try:
        stream = manager.chat_stream("count", max_tokens=50)
        async for chunk in stream:
            assert chunk.content == "one "
            break
        # Held while the caller has the stream: the request, the backup's attempt, budget and tokens.
        assert manager.get_stats()["inflight"] == 1
        assert manager.get_provider_status()["backup"]["inflight"] == 1
        assert await _reserved(manager) > 0
        assert not await _token_window_is_empty(manager, "backup")

        del stream, chunk
        gc.collect()
        # Released before the loop runs again: nothing awaited since the drop.
        stats = manager.get_stats()
        assert stats["inflight"] == 0 and stats["cancelled"] == 1 and stats["successes"] == 0, stats
        assert all(s["inflight"] == 0 for s in manager.get_provider_status().values())
        assert all(s["circuit"]["probe_in_flight"] is False for s in manager.get_provider_status().values())
        assert [e.data.get("cancelled") for e in ends] == [True]
        assert [a.deployment for a in ends[0].data["attempts"]] == ["primary"]

        # Store work started by the drop (an after hook waiting on another) ends within a few loop turns.
        await _until(lambda: _reserved(manager), 0.0)
        assert await _token_window_is_empty(manager, "backup")
        # The generator's own finalizer (closing the provider's stream) runs later and settles nothing twice.
        for _ in range(20):
            await asyncio.sleep(0)
        stats = manager.get_stats()
        assert stats["requests"] == 1 and stats["cancelled"] == 1 and stats["inflight"] == 0, stats
        assert len(ends) == 1
        # The deployment still serves.
        response = await manager.chat("again", provider="backup", fallback=False, max_tokens=5)
        assert response.content == "one two three four"
    finally:
        await manager.cleanup()


async def test_a_stream_dropped_after_its_final_chunk_is_a_success(sim: ProviderSimulator) -> None:
    sim.script(None, Reply(text="a b", usage=Usage(input_tokens=1, output_tokens=2), chunks=["a ", "b"]))
    manager = _manager(sim, "native")
    ends: list[Event] = []
    manager.add_observer(lambda event: ends.append(event) if event.kind == "request_end" else None)
    try:
        stream = manager.chat_stream("count", max_tokens=50)
        async for chunk in stream:
            if chunk.kind == "final":
                break
        del stream, chunk
        gc.collect()
        stats = manager.get_stats()
        assert stats["inflight"] == 0 and stats["successes"] == 1 and stats["cancelled"] == 0, stats
        assert [(e.success, e.chunk_count, e.deployment) for e in ends] == [(True, 3, "primary")]
        assert ends[0].usage is not None and ends[0].usage.output_tokens == 2
        await _until(lambda: _reserved(manager), 0.0)
    finally:
        await manager.cleanup()


async def test_a_stream_never_iterated_holds_nothing(sim: ProviderSimulator) -> None:
    manager = _manager(sim, "native")
    try:
        stream: Any = manager.chat_stream("never read")
        del stream
        gc.collect()
        assert manager.get_stats()["requests"] == 0 and manager.get_stats()["inflight"] == 0
    finally:
        await manager.cleanup()
