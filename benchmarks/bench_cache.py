"""What the response cache costs on a miss and saves on a hit, as CPU per request in one process.

Three managers over the same simulator, in alternating rounds (drift and neighbours' load hit all alike), medians:

- ``no cache``: ``LLMManager.chat`` with no ``[cache]`` section;
- ``cache, miss``: ``[cache] enabled = true`` (memory backend), every request's prompt new, so every request is
  keyed, looked up, sent and stored — the cost of having the cache configured;
- ``cache, hit``: the same configuration, one prompt repeated: every request is answered from the cache, no
  network round trip.

Usage: python benchmarks/bench_cache.py [--rounds 8] [-n 2000] [--stream] [--backend memory|sqlite]
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


def _manager(base_url: str, cache: dict[str, Any] | None) -> Any:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager

    data: dict[str, Any] = {"providers": {"openai": {
        "api_key": KEY, "base_url": base_url, "model": MODEL, "max_connections": 100}}}
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


async def _run(base_url: str, rounds: int, n: int, stream: bool, cache: dict[str, Any]) -> dict[str, list[float]]:
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
    args = parser.parse_args()
    cache: dict[str, Any] = {"enabled": True, "backend": args.backend, "max_entries": 1_000_000}
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        if args.backend == "sqlite":
            cache["path"] = str(Path(tmp) / "cache.db")
        with start_simulator() as sim:
            results = asyncio.run(_run(sim.base_url, args.rounds, args.n, args.stream, cache))
    medians = {name: statistics.median(values) for name, values in results.items()}
    base = medians["no cache"]
    mode = "stream" if args.stream else "chat"
    print(f"{mode}, {args.backend} backend, {args.rounds} rounds x {args.n}, CPU us per request (median):")
    for name, value in medians.items():
        print(f"  {name:<12} {value:8.1f} us  ({value / base:5.2f}x no cache, {value - base:+.1f} us)")


if __name__ == "__main__":
    main()
