"""What the response cache costs on a miss and saves on a hit, as CPU per request in one process.

Three managers over the same simulator, in alternating rounds (drift and neighbours' load hit all alike), medians:

- ``no cache``: ``LLMManager.chat`` with no ``[cache]`` section;
- ``cache, miss``: ``[cache] enabled = true`` (memory backend), every request's prompt new, so every request is
  keyed, looked up, sent and stored — the cost of having the cache configured;
- ``cache, hit``: the same configuration, one prompt repeated: every request is answered from the cache, no
  network round trip.

``--upstream memory`` answers from a provider inside the process (a fixed answer, no network): what remains is
the manager's own CPU, so the cache's share of it is not lost in the HTTP client's (whose CPU varies more from
round to round than the whole cache costs). ``--max-entries`` bounds the cache (default 1,000,000: every miss
adds an entry; with a bound below the number of requests, misses also evict).

Usage: python benchmarks/bench_cache.py [--rounds 8] [-n 2000] [--stream] [--backend memory|sqlite]
       [--upstream simulator|memory] [--max-entries N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import start_simulator  # noqa: E402

KEY = "bench-cache-key"
MODEL = "gpt-4o-mini"


def _register_memory_provider() -> None:
    """A provider answering one fixed answer from inside the process (``--upstream memory``)."""
    from spoon_llm import LLMProviderInterface, LLMResponse, ProviderCapability, ProviderMetadata, TokenUsage
    from spoon_llm.registry import get_global_registry

    answer = LLMResponse(content="One sentence about benchmarks.", provider="in-process", model=MODEL,
                         finish_reason="stop", native_finish_reason="stop",
                         usage=TokenUsage(input_tokens=14, output_tokens=6))

    class InProcessProvider(LLMProviderInterface):
        provider_name = "in-process"

        async def initialize(self, config: Any) -> None:
            pass

        async def chat(self, messages: Any, **kwargs: Any) -> LLMResponse:
            return answer.model_copy()

        async def chat_stream(self, messages: Any, callbacks: Any = None, **kwargs: Any) -> Any:
            raise NotImplementedError("--upstream memory answers whole requests only")
            yield

        async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
            return answer.model_copy()

        async def chat_with_tools(self, messages: Any, tools: Any, **kwargs: Any) -> LLMResponse:
            return answer.model_copy()

        async def embed(self, inputs: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        def get_metadata(self) -> ProviderMetadata:
            return ProviderMetadata(name="in-process", capabilities=[ProviderCapability.CHAT], requires_api_key=False)

        async def health_check(self) -> bool:
            return True

        async def cleanup(self) -> None:
            pass

    get_global_registry().register("in-process", InProcessProvider, [ProviderCapability.CHAT], replace=True)


def _manager(base_url: str | None, cache: dict[str, Any] | None) -> Any:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager

    section: dict[str, Any] = ({"type": "in-process", "model": MODEL} if base_url is None else
                               {"api_key": KEY, "base_url": base_url, "model": MODEL, "max_connections": 100})
    data: dict[str, Any] = {"providers": {"openai": section},
                            "pricing": {MODEL: {"input_per_1m": 0.15, "output_per_1m": 0.6}}}
    if cache is not None:
        data["cache"] = cache
    return LLMManager(ConfigurationManager(data, env={}))


def _caller(manager: Any, stream: bool, fresh: bool) -> Callable[[], Awaitable[object]]:
    """One request: a new prompt each time when ``fresh`` (misses), else the same prompt (hits)."""
    counter = itertools.count()

    def prompt() -> str:
        return f"Write one sentence about benchmarks, take {next(counter)}." if fresh else "Write one sentence."

    async def call() -> object:
        return await manager.chat(prompt())

    async def call_stream() -> object:
        return [chunk async for chunk in manager.chat_stream(prompt())]

    return call_stream if stream else call


async def _run(base_url: str | None, rounds: int, n: int, stream: bool,
               cache: dict[str, Any]) -> dict[str, list[float]]:
    managers = {"no cache": _manager(base_url, None), "cache, miss": _manager(base_url, cache),
                "cache, hit": _manager(base_url, cache)}
    calls = {"no cache": _caller(managers["no cache"], stream, fresh=True),
             "cache, miss": _caller(managers["cache, miss"], stream, fresh=True),
             "cache, hit": _caller(managers["cache, hit"], stream, fresh=False)}
    out: dict[str, list[float]] = {name: [] for name in calls}
    try:
        for _ in range(300):  # warm-up: connections, imports, price resolution
            for call in calls.values():
                await call()
        for _ in range(rounds):
            for name, call in calls.items():
                started = time.process_time()
                for _ in range(n):
                    await call()
                out[name].append((time.process_time() - started) / n * 1e6)
        hits = managers["cache, hit"].get_status()["middleware"].get("cache", {})
        print(f"hit manager's cache status: {hits}")
    finally:
        for manager in managers.values():
            await manager.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--backend", default="memory", choices=["memory", "sqlite"])
    parser.add_argument("--upstream", default="simulator", choices=["simulator", "memory"])
    parser.add_argument("--max-entries", type=int, default=1_000_000)
    args = parser.parse_args()
    cache: dict[str, Any] = {"enabled": True, "backend": args.backend, "max_entries": args.max_entries}
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        if args.backend == "sqlite":
            cache["path"] = str(Path(tmp) / "cache.db")
        if args.upstream == "memory":
            _register_memory_provider()
            results = asyncio.run(_run(None, args.rounds, args.n, args.stream, cache))
        else:
            with start_simulator() as sim:
                results = asyncio.run(_run(sim.base_url, args.rounds, args.n, args.stream, cache))
    medians = {name: statistics.median(values) for name, values in results.items()}
    base = medians["no cache"]
    mode = "stream" if args.stream else "chat"
    print(f"{mode}, {args.backend} backend, upstream {args.upstream}, max_entries {args.max_entries}, "
          f"{args.rounds} rounds x {args.n}, CPU us per request (median):")
    for name, value in medians.items():
        print(f"  {name:<12} {value:8.1f} us  ({value / base:5.2f}x no cache, {value - base:+.1f} us)")


if __name__ == "__main__":
    main()
