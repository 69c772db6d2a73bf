"""The response cache, through real requests to the simulator: memory, SQLite and a real redis-server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager, Message
from spoon_llm.cache import CacheMiddleware, MemoryCache, cache_key
from spoon_llm.errors import LLMError, ServiceUnavailableError, ValidationError
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import AttemptContext
from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall

from .conftest import KEYS


def manager_for(sim: ProviderSimulator, cache: dict[str, Any] | None = None, **settings: Any) -> LLMManager:
    """A manager built from configuration alone, so the cache comes from ``[cache]`` as users get it."""
    providers = settings.pop("providers", {"primary": {"model": "model-primary"}})
    sections = {name: {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"], **section}
                for name, section in providers.items()}
    data = {"providers": sections, "retry": {"max_retries": 0}, **settings}
    if cache is not None:
        data["cache"] = cache
    return LLMManager(ConfigurationManager(data, env={}))


def chat_requests(sim: ProviderSimulator) -> int:
    return len(sim.requests_for("openai", "chat"))


async def test_identical_requests_hit_whatever_the_spelling(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        first = await manager.chat([{"role": "user", "content": "hello"}], temperature=0.2, max_tokens=50)
        assert "cache" not in first.metadata and first.usage.output_tokens > 0
        again = await manager.chat([Message.user("hello")], max_tokens=50, temperature=0.2)
        assert chat_requests(sim) == 1
        assert again.content == first.content and again.cache_hit and not first.cache_hit
        assert again.cost.total_cost == 0 and again.usage.total_tokens == 0
        assert again.metadata["cache"]["usage"]["output_tokens"] == first.usage.output_tokens
        assert again.attempts[0].deployment == "primary"
        status = manager.get_status()["middleware"]["cache"]
        assert (status["hits"], status["misses"], status["stores"], status["entries"]) == (1, 1, 1, 1)


@pytest.mark.parametrize("change", [
    {"temperature": 0.3}, {"max_tokens": 51}, {"stop": ["x"]}, {"seed": 7}, {"model": "primary/other-model"},
    {"tools": [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]},
    {"response_format": {"type": "json_object"}}, {"extra_body": {"vendor_flag": True}},
])
async def test_anything_that_changes_the_answer_misses(sim: ProviderSimulator, change: dict[str, Any]) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        base = {"temperature": 0.2, "max_tokens": 50}
        await manager.chat("hello", **base)
        await manager.chat("hello", **{**base, **change})
        assert chat_requests(sim) == 2
        await manager.chat("hello", **{**base, **change})
        assert chat_requests(sim) == 2


async def test_streams_replay_whole_answers_and_whole_requests_reuse_streams(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        whole = await manager.chat("tell me")
        chunks = [c async for c in manager.chat_stream("tell me")]
        assert chat_requests(sim) == 1
        assert "".join(c.delta for c in chunks) == whole.content
        final = chunks[-1]
        assert final.kind == "final" and final.finish_reason == whole.finish_reason
        assert final.metadata["cache"]["hit"] and final.metadata["fallback_path"] == ["primary"]
        streamed = [c async for c in manager.chat_stream("another one")]
        assert chat_requests(sim) == 2
        replayed = await manager.chat("another one")
        assert chat_requests(sim) == 2 and replayed.cache_hit
        assert replayed.content == "".join(c.delta for c in streamed)
        assert replayed.metadata["cache"]["usage"]["output_tokens"] == streamed[-1].usage.output_tokens


async def test_tool_calls_are_cached_and_replayed(sim: ProviderSimulator) -> None:
    tools = [{"name": "lookup", "description": "Look up", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
    async with manager_for(sim, {"enabled": True}) as manager:
        sim.script("openai", Reply(tool_calls=[ToolCall("lookup", {"q": "cats"})]))
        first = await manager.chat_with_tools("find cats", tools)
        again = await manager.chat_with_tools("find cats", tools)
        streamed = [c async for c in manager.chat_stream("find cats", tools=tools)]
        assert chat_requests(sim) == 1  # tools given positionally or as a keyword make the same request
        assert again.cache_hit and [t.arguments for t in again.tool_calls] == [{"q": "cats"}]
        assert first.tool_calls[0].name == again.tool_calls[0].name == "lookup"
        assert streamed[-1].tool_calls[0].name == "lookup" and streamed[-1].cache_hit


async def test_per_call_settings_bypass_refresh_and_ttl(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        await manager.chat("hi")
        assert not (await manager.chat("hi", cache=False)).cache_hit
        assert chat_requests(sim) == 2
        refreshed = await manager.chat("hi", cache="refresh")
        assert not refreshed.cache_hit and chat_requests(sim) == 3
        assert (await manager.chat("hi")).cache_hit and chat_requests(sim) == 3
        with pytest.raises(ValidationError):
            await manager.chat("hi", cache="sometimes")
        assert "cache" not in sim.requests[-1].body  # never forwarded to the provider


async def test_entries_expire_after_their_ttl() -> None:
    now = [1000.0]
    backend = MemoryCache(clock=lambda: now[0])
    await backend.set("k", b"v", 10.0)
    now[0] += 9.9
    assert await backend.get("k") == b"v"
    now[0] += 0.2
    assert await backend.get("k") is None and backend.stats()["expirations"] == 1


async def test_memory_bounds_evict_the_least_recently_used() -> None:
    backend = MemoryCache(max_entries=2, max_bytes=10)
    await backend.set("a", b"1234", None)
    await backend.set("b", b"1234", None)
    assert await backend.get("a") == b"1234"  # now "b" is the least recently used
    await backend.set("c", b"1234", None)
    assert await backend.get("b") is None and await backend.get("a") is not None
    await backend.set("d", b"123456", None)  # bytes: 4 + 4 + 6 > 10
    stats = backend.stats()
    assert stats["entries"] == 2 and stats["bytes"] <= 10 and stats["evictions"] == 2


async def test_memory_keys_given_as_bytes_count_toward_the_byte_bound() -> None:
    backend = MemoryCache(max_entries=10, max_bytes=20)
    backend.set_now(b"request-1", b"1234", None)  # 9 + 4 bytes
    assert backend.stats()["bytes"] == 13 and backend.contains(b"request-1")
    backend.set_now(b"request-2", b"1234", None)  # 26 > 20: the older entry goes
    assert not backend.contains(b"request-1") and backend.stats()["bytes"] == 13
    await backend.delete(b"request-2")
    assert backend.stats()["bytes"] == 0
    backend.set_now(b"k" * 20, b"v", None)  # larger than the whole cache: not stored
    assert backend.stats()["entries"] == 0


async def test_every_backend_names_a_hit_by_the_same_key(sim: ProviderSimulator, tmp_path: Path) -> None:
    keys = []
    for settings in ({"enabled": True}, {"enabled": True, "backend": "sqlite", "path": str(tmp_path / "c.db")}):
        async with manager_for(sim, settings) as manager:
            await manager.chat("same question", temperature=0.5)
            hit = await manager.chat("same question", temperature=0.5)
            deployment = manager.router.deployments["primary"]
        assert hit.cache_hit
        keys.append(hit.metadata["cache"]["key"])
    expected = cache_key(AttemptContext("r", "chat", deployment, None, [{"role": "user", "content": "same question"}],
                                        {"temperature": 0.5}), "default")
    assert keys == [expected, expected]


async def test_errors_and_partial_streams_are_never_cached(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True}) as manager:
        sim.fault("openai", Fault.unavailable(), times=1)
        with pytest.raises(ServiceUnavailableError):
            await manager.chat("hi")
        assert not (await manager.chat("hi")).cache_hit
        sim.fault("openai", Fault.truncated_stream(after=2), times=1)
        with pytest.raises(LLMError):
            [c async for c in manager.chat_stream("a story")]
        chunks = [c async for c in manager.chat_stream("a story")]
        assert "cache" not in chunks[-1].metadata
        stream = manager.chat_stream("closed early")
        await stream.__anext__()
        await stream.aclose()
        assert not (await manager.chat("closed early")).cache_hit


async def test_a_hit_reserves_nothing_and_takes_no_rate_limit_slot(sim: ProviderSimulator) -> None:
    providers = {"primary": {"model": "model-primary", "rpm": 1}}
    async with manager_for(sim, {"enabled": True}, providers=providers,
                           rate_limits={"on_limit": "fail"}) as manager:
        await manager.chat("hi")
        for _ in range(5):
            assert (await manager.chat("hi")).cache_hit  # the only slot of the minute is long gone
        assert manager.router.deployments["primary"].requests == 1


async def test_tenants_never_see_each_others_entries(sim: ProviderSimulator) -> None:
    async with manager_for(sim, {"enabled": True, "key_tags": ["user"]}) as manager:
        await manager.chat("hi", tags={"user": "ann"})
        assert not (await manager.chat("hi", tags={"user": "bob"})).cache_hit
        assert (await manager.chat("hi", tags={"user": "ann"})).cache_hit
        assert not (await manager.chat("hi", tags={"user": "ann"}, cache_namespace="eval-run-2")).cache_hit
        assert chat_requests(sim) == 3


async def test_per_provider_enable_caching_and_cache_ttl(sim: ProviderSimulator) -> None:
    providers = {"cached": {"model": "m1", "enable_caching": True, "cache_ttl": 60},
                 "plain": {"model": "m2"}}
    async with manager_for(sim, None, providers=providers) as manager:
        await manager.chat("hi", provider="cached")
        assert (await manager.chat("hi", provider="cached")).cache_hit
        await manager.chat("hi", provider="plain")
        assert not (await manager.chat("hi", provider="plain")).cache_hit


async def test_sqlite_entries_survive_a_restart(sim: ProviderSimulator, tmp_path: Path) -> None:
    settings = {"enabled": True, "backend": "sqlite", "path": str(tmp_path / "cache.db")}
    async with manager_for(sim, settings) as manager:
        first = await manager.chat("remember me")
    async with manager_for(sim, settings) as manager:
        again = await manager.chat("remember me")
    assert again.cache_hit and again.content == first.content and chat_requests(sim) == 1


async def test_a_failing_backend_never_fails_a_request(sim: ProviderSimulator) -> None:
    # Nothing listens on port 9 of loopback: every cache operation fails fast.
    async with manager_for(sim, {"enabled": True, "backend": "redis", "url": "redis://127.0.0.1:9/0"},
                           state={"timeout": 0.2}) as manager:
        cache = next(m for m in manager.middleware if isinstance(m, CacheMiddleware))
        for _ in range(2):
            assert (await manager.chat("hi")).content
            await cache.flush()  # stores to a backend that waits land (here: fail) in the background
        status = manager.get_status()["middleware"]["cache"]
        assert status["errors"] == 4 and status["hits"] == 0 and chat_requests(sim) == 2


class _SickMemory(MemoryCache):
    """A memory backend whose every lookup and store fails."""

    def __init__(self) -> None:
        super().__init__()
        self.contains = self._broken_contains

    def _broken_contains(self, key: object) -> bool:
        raise OSError("lookup broke")

    def get_now(self, key: Any) -> bytes | None:
        raise OSError("lookup broke")

    def set_now(self, key: Any, value: bytes, ttl: float | None) -> None:
        raise OSError("store broke")


async def test_a_failing_memory_backend_is_skipped_and_counted(sim: ProviderSimulator) -> None:
    cache = CacheMiddleware(_SickMemory())
    data = {"providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"],
                                      "model": "model-primary"}}}
    async with LLMManager(ConfigurationManager(data, env={}), middleware=[cache]) as manager:
        assert manager._chain.lookup is not None  # the plain halves, not the coroutine wrapper
        for _ in range(2):
            assert (await manager.chat("hi")).content
    assert (cache.errors, cache.hits, cache.stores, chat_requests(sim)) == (4, 0, 0, 2)


async def test_a_cached_answer_shares_nothing_with_the_callers(sim: ProviderSimulator) -> None:
    tools = [{"name": "lookup", "description": "Look up", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
    async with manager_for(sim, {"enabled": True}) as manager:
        first = await manager.chat("hi")
        content, output_tokens = first.content, first.usage.output_tokens
        first.content, first.metadata["mine"], first.usage.output_tokens = "changed", 1, 999
        hit = await manager.chat("hi")
        assert hit.content == content and "mine" not in hit.metadata
        assert hit.metadata["cache"]["usage"]["output_tokens"] == output_tokens
        hit.content, hit.metadata["cache"]["hit"] = "mine", False
        again = await manager.chat("hi")
        assert again.content == content and again.cache_hit and again is not hit
        sim.script("openai", Reply(tool_calls=[ToolCall("lookup", {"q": "cats"})]))
        called = await manager.chat_with_tools("find cats", tools)
        called.tool_calls[0].function.name = "changed"
        replayed = await manager.chat_with_tools("find cats", tools)
        assert replayed.cache_hit and replayed.tool_calls[0].name == "lookup"
        assert chat_requests(sim) == 2


_WORKER = """
import asyncio, json, sys
from spoon_llm import ConfigurationManager
from spoon_llm.manager import LLMManager

async def main():
    async with LLMManager(ConfigurationManager(json.loads(sys.argv[1]), env={})) as manager:
        response = await manager.chat("shared question")
        print(json.dumps({"hit": response.cache_hit, "content": response.content}))

asyncio.run(main())
"""


async def test_two_processes_share_hits_through_redis(sim: ProviderSimulator, redis_server: str,
                                                      redis_prefix: str) -> None:
    config = {"providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"],
                                        "model": "model-primary"}},
              "cache": {"enabled": True, "backend": "redis", "url": redis_server},
              "state": {"key_prefix": redis_prefix}}
    outcomes = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", _WORKER, json.dumps(config),
                                                       stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        assert process.returncode == 0
        outcomes.append(json.loads(out))
    assert [o["hit"] for o in outcomes] == [False, True]
    assert outcomes[0]["content"] == outcomes[1]["content"] and chat_requests(sim) == 1


async def test_keys_ignore_dict_order_and_message_types(sim: ProviderSimulator) -> None:
    async with manager_for(sim) as manager:
        deployment = manager.router.deployments["primary"]

    def key(messages: Any, **kwargs: Any) -> str:
        return cache_key(AttemptContext("r", "chat", deployment, None, messages, kwargs), "ns")

    plain = [{"role": "user", "content": "hi"}]
    assert key(plain, temperature=0.1, top_p=0.5) == key([Message.user("hi")], top_p=0.5, temperature=0.1)
    assert key(plain, timeout=3, tags={"a": "b"}) == key(plain)  # how long to wait never changes the answer
    assert key(plain) != key([{"role": "user", "content": "hi!"}])
    assert key(plain, response_format={"type": "json_object"}) != key(plain)
    assert key([{"content": "hi", "role": "user"}]) == key(plain)
    nested = {"a": 1, "b": {"x": 2, "y": [1, {"q": 1, "p": 2}]}}
    assert key(plain, extra_body=nested) == key(plain, extra_body={"b": {"y": [1, {"p": 2, "q": 1}], "x": 2}, "a": 1})
    # Integer keys, as Python callers write a logit bias, are keyed (not skipped), whatever their order.
    assert key(plain, logit_bias={50256: -100, 11: 5}) == key(plain, logit_bias={11: 5, 50256: -100})
    assert key(plain, logit_bias={11: 5}) not in (key(plain), key(plain, logit_bias={11: 6}))


def test_the_cache_middleware_is_outermost_in_the_configured_chain(sim: ProviderSimulator) -> None:
    manager = manager_for(sim, {"enabled": True})
    assert isinstance(manager.middleware[0], CacheMiddleware)
    assert not isinstance(manager_for(sim).middleware[0], CacheMiddleware)
