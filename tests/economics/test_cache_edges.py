"""The response cache at its edges: what a stream stores and when, entries it cannot read, tenants' namespaces,
expiry in the memory backend, and keys that JSON says are equal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from spoon_llm import ConfigurationManager
from spoon_llm.cache import CacheMiddleware, MemoryCache
from spoon_llm.cache._key import tag_namespace
from spoon_llm.cache.middleware import replay_chunks
from spoon_llm.manager import LLMManager
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.types import LLMResponse

from .conftest import KEYS
from .test_cache import chat_requests, manager_for


async def test_a_stream_stores_its_answer_as_it_arrived_whatever_the_caller_does_to_it(
        sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        async for chunk in manager.chat_stream("tell me a story"):
            if chunk.kind == "final":
                original = chunk.content
                chunk.content = "CHANGED BY THE CALLER"
                chunk.metadata["mine"] = True
                chunk.usage.output_tokens = 10**6  # type: ignore[union-attr]
        hit = await manager.chat("tell me a story")
        assert hit.cache_hit and chat_requests(sim) == 1
        assert hit.content == original and "mine" not in hit.metadata
        assert hit.metadata["cache"]["usage"]["output_tokens"] < 10**6


async def test_a_stream_closed_right_after_its_final_chunk_is_stored(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        async for chunk in manager.chat_stream("story one"):
            if chunk.kind == "final":
                break  # closed at once: the answer is complete
        stream = manager.chat_stream("story two")
        async for chunk in stream:
            if chunk.kind == "final":
                await stream.aclose()
                break
        assert (await manager.chat("story one")).cache_hit and (await manager.chat("story two")).cache_hit
        assert chat_requests(sim) == 2
        status = manager.get_status()["middleware"]["cache"]
        assert (status["stores"], status["hits"]) == (2, 2)


async def test_a_stream_cut_before_its_final_chunk_is_never_stored(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        async for chunk in manager.chat_stream("a long story"):
            if chunk.kind == "text":
                break
        assert not (await manager.chat("a long story")).cache_hit
        assert manager.get_status()["middleware"]["cache"]["stores"] == 1  # the whole answer only


async def test_a_resumed_stream_replays_without_its_prefix_twice(sim: ProviderSimulator) -> None:
    providers = {"primary": {"model": "model-primary"},
                 "backup": {"model": "model-backup", "assistant_prefill": True}}
    async with manager_for(sim, {"enabled": True}, providers=providers,
                           fallback_chain=["primary", "backup"]) as manager:
        sim.script("openai", Reply(text="alpha beta gamma delta epsilon"), model="model-primary")
        sim.script("openai", Reply(text=" [continued]"), model="model-backup")
        sim.fault("openai", Fault.disconnect(after=3), model="model-primary", times=2)
        answers = []
        for _ in range(2):
            chunks = [c async for c in manager.chat_stream("go", resume_on_interrupt=True)]
            answers.append(("".join(c.delta for c in chunks), chunks[-1].content, chunks[-1].cache_hit))
        first, second = answers
        assert not first[2] and second[2]  # the continuation came from the cache the second time
        assert second[:2] == first[:2] and first[1].endswith(" [continued]") and first[1].count("alpha") == 1


class _Garbage:
    """A backend whose every entry is unreadable in one way: the answer is fine, its stored price is not."""

    name = "garbage"

    def __init__(self, price: Any) -> None:
        self.entry = _entry_with_price(price)

    async def get(self, key: str) -> bytes | None:
        return self.entry

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        return None

    async def delete(self, key: str) -> None:
        return None

    async def clear(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"backend": self.name}


def _entry_with_price(price: Any) -> bytes:
    return json.dumps([{"content": "cached"}, "LLMResponse", price, 1.0]).encode()


@pytest.mark.parametrize("price", ["n/a", {"usd": 1}, True, [1]])
async def test_an_entry_with_an_unreadable_price_is_an_error_not_a_failed_request(
        sim: ProviderSimulator, price: Any) -> None:
    cache = CacheMiddleware(_Garbage(price))  # type: ignore[arg-type]
    data = {"providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"],
                                      "model": "model-primary"}}, "retry": {"max_retries": 0}}
    async with LLMManager(ConfigurationManager(data, env={}), middleware=[cache]) as manager:
        answer = await manager.chat("q")
        assert not answer.cache_hit and answer.content != "cached"
        await cache.flush()  # until its store has landed, this process reads the answer it just stored
        chunks = [c async for c in manager.chat_stream("q")]
        assert not chunks[-1].cache_hit
    assert (cache.errors, cache.hits, chat_requests(sim)) == (2, 0, 2)


async def test_a_calls_own_namespace_is_still_narrowed_by_the_key_tags(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True, "key_tags": ["user"]}) as manager:
        await manager.chat("q", cache_namespace="eval", tags={"user": "ann"})
        bob = await manager.chat("q", cache_namespace="eval", tags={"user": "bob"})
        again = await manager.chat("q", cache_namespace="eval", tags={"user": "ann"})
    assert not bob.cache_hit and again.cache_hit and chat_requests(sim) == 2


def test_tag_values_cannot_join_into_another_tenants_namespace() -> None:
    key_tags = ("team", "user")
    one = tag_namespace("ns", {"team": "a|user=b", "user": "c"}, key_tags)
    two = tag_namespace("ns", {"team": "a", "user": "b|user=c"}, key_tags)
    three = tag_namespace("ns|team=a", {"team": "b", "user": "c"}, key_tags)
    assert len({one, two, three, tag_namespace("ns", {"team": "a", "user": "b"}, key_tags)}) == 4
    assert tag_namespace("ns", {"team": "a", "user": "b"}, key_tags) == "ns|team=a|user=b"  # plain values as before


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_expired_entries_go_before_live_ones_and_their_bytes_are_given_back() -> None:
    clock = _Clock()
    cache = MemoryCache(max_entries=2, clock=clock)
    await cache.set("short", b"S" * 10, ttl=1)
    await cache.set("long", b"L" * 10, ttl=1000)
    clock.now = 5
    await cache.set("new", b"N" * 10, ttl=None)  # over the entry bound: the expired entry goes, not "long"
    assert await cache.get("long") == b"L" * 10 and await cache.get("new") == b"N" * 10
    stats = cache.stats()
    assert (stats["entries"], stats["bytes"], stats["evictions"], stats["expirations"]) == (2, 20, 0, 1)
    clock.now = 2000
    stats = cache.stats()
    assert (stats["entries"], stats["bytes"], stats["expirations"]) == (1, 10, 2)  # "new" never expires


async def test_expired_entries_make_room_before_any_live_one_is_evicted() -> None:
    clock = _Clock()
    cache = MemoryCache(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        await cache.set(key, b"v", ttl=1)
    clock.now = 2  # all three have expired
    await cache.set("d", b"v", ttl=None)  # over the bound: one pass drops the expired ones
    for key in ("e", "f"):
        await cache.set(key, b"v", ttl=None)
    stats = cache.stats()
    assert (stats["entries"], stats["expirations"], stats["evictions"]) == (3, 3, 0)


async def test_a_refreshed_answer_too_large_to_keep_leaves_no_stale_one(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True, "backend": "memory", "max_bytes": 1500}) as manager:
        sim.script("openai", Reply(text="short old answer"), times=1)
        await manager.chat("q")
        sim.script("openai", Reply(text="x" * 2000), times=1)
        await manager.chat("q", cache="refresh")
        fresh = await manager.chat("q")
    assert not fresh.cache_hit and chat_requests(sim) == 3


def test_a_replayed_stream_keeps_the_refusal() -> None:
    final = replay_chunks(LLMResponse(content="", refusal="I can't help with that"))[-1]
    assert final.kind == "final" and final.metadata["refusal"] == "I can't help with that"


async def test_sampling_settings_equal_as_json_numbers_share_an_entry(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        await manager.chat("q", temperature=1, top_p=1)
        again = await manager.chat("q", temperature=1.0, top_p=1.0)
        other = await manager.chat("q", temperature=1.5)
    assert again.cache_hit and not other.cache_hit and chat_requests(sim) == 2


class City(BaseModel):
    name: str


async def test_a_completion_with_a_typed_response_format_is_cached(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        sim.script("openai", Reply(text='{"name": "Tokyo"}'))
        await manager.completion("a city", response_format=City)
        again = await manager.completion("a city", response_format=City)
        status = manager.get_status()["middleware"]["cache"]
    assert again.cache_hit and status["skipped"] == 0


class _HeldWrites:
    """A backend whose writes wait until the test lets them through (a slow or hung shared store)."""

    name = "held"

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.gate = asyncio.Event()
        self.writes: list[bytes] = []

    async def get(self, key: str) -> bytes | None:
        return self.entries.get(key)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        if not self.writes:  # only the first write is held
            self.writes.append(value)
            await self.gate.wait()
        else:
            self.writes.append(value)
        self.entries[key] = value

    async def delete(self, key: str) -> None:
        self.entries.pop(key, None)

    async def clear(self) -> None:
        self.entries.clear()

    async def aclose(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"backend": self.name, "entries": len(self.entries)}


def _manager_over(sim: ProviderSimulator, cache: CacheMiddleware) -> LLMManager:
    data = {"providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"],
                                      "model": "model-primary"}}, "retry": {"max_retries": 0}}
    return LLMManager(ConfigurationManager(data, env={}), middleware=[cache])


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_answer_never_waits_for_its_store(sim: ProviderSimulator, streamed: bool) -> None:
    backend = _HeldWrites()
    cache = CacheMiddleware(backend)  # type: ignore[arg-type]
    async with _manager_over(sim, cache) as manager:
        # The store hangs until released: the answer is served all the same, well before the deadline.
        if streamed:
            chunks = [c async for c in manager.chat_stream("q", deadline=5.0)]
            assert chunks[-1].kind == "final" and not chunks[-1].cache_hit
        else:
            assert not (await manager.chat("q", deadline=5.0)).cache_hit
        assert cache.stores == 0 and not backend.entries  # still on its way
        assert (await manager.chat("q")).cache_hit  # this process reads what it stored meanwhile
        backend.gate.set()
        await cache.flush()
        assert cache.stores == 1 and len(backend.entries) == 1 and chat_requests(sim) == 1


async def test_writes_to_one_key_land_in_the_order_they_were_made(sim: ProviderSimulator) -> None:
    backend = _HeldWrites()
    cache = CacheMiddleware(backend)  # type: ignore[arg-type]
    async with _manager_over(sim, cache) as manager:
        sim.script("openai", Reply(text="old"), times=1)
        await manager.chat("q")  # its write is held
        sim.script("openai", Reply(text="new"), times=1)
        await manager.chat("q", cache="refresh")  # its write waits for the held one
        assert (await manager.chat("q")).content == "new"
        backend.gate.set()
        await cache.flush()
        assert len(backend.writes) == 2 and b"new" in backend.entries[next(iter(backend.entries))]


async def test_closing_the_manager_lets_stores_on_their_way_land(sim: ProviderSimulator) -> None:
    backend = _HeldWrites()
    backend.gate.set()
    cache = CacheMiddleware(backend)  # type: ignore[arg-type]
    async with _manager_over(sim, cache) as manager:
        await manager.chat("q")
    assert cache.stores == 1 and len(backend.entries) == 1


def test_a_script_that_ends_right_after_its_call_keeps_what_it_stored(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    with ProviderSimulator() as sim:  # on its own thread: each asyncio.run below is a loop of its own

        async def one() -> bool:  # no close: the loop ends as soon as the answer is back
            manager = manager_for(sim, {"enabled": True, "backend": "sqlite", "path": str(path)})
            return (await manager.chat("same question")).cache_hit

        assert asyncio.run(one()) is False
        assert asyncio.run(one()) is True
        assert chat_requests(sim) == 1
