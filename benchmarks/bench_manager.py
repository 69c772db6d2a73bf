"""What the manager costs over the provider alone, and batch throughput against raw AsyncOpenAI.

Part 1 (harness, side by side, one run): CPU per request of the raw SDK, our OpenAI provider, and
``LLMManager.chat`` / ``chat_stream`` over that provider, at each concurrency.

Part 1b: the provider alone and the manager over it in alternating rounds in one process (``--rounds``), the
median of each: the manager's own cost is a few microseconds, below the run-to-run noise of part 1.

Part 2: ``batch_chat`` of N requests at concurrency C against ``asyncio.gather`` + a semaphore over raw
``AsyncOpenAI``, same simulator process, wall-clock throughput.

Usage: python benchmarks/bench_manager.py [-n 2000] [-c 1,64] [--stream] [--batch 10000] [--batch-concurrency 256]
       [--rounds 10] [--transport native|sdk] [--skip-batch]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    CLIENTS,
    RequestFn,
    Target,
    run_benchmark,
    run_interleaved,
    spoon_requests,
    start_simulator,
)

KEY = "bench-manager-key"


#: The provider transport under test (``--transport``; ``native`` is the default, ``sdk`` the official SDK).
TRANSPORT = "native"


def _config(target: Target) -> Any:
    from spoon_llm import ConfigurationManager

    return ConfigurationManager(
        {"providers": {"openai": {"api_key": KEY, "base_url": target.openai_base_url,
                                  "model": target.model_or("gpt-4o-mini"), "max_connections": 1000,
                                  "max_keepalive_connections": 1000, "transport": TRANSPORT}}},
        env={},
    )


@contextlib.asynccontextmanager
async def spoon_provider(target: Target) -> AsyncIterator[RequestFn]:
    """Our OpenAIProvider on its own (no manager)."""
    from spoon_llm.providers.openai import OpenAIProvider

    provider = OpenAIProvider()
    await provider.initialize(_config(target).load_provider_config("openai"))
    try:
        yield spoon_requests(target, provider)
    finally:
        await provider.cleanup()


@contextlib.asynccontextmanager
async def spoon_manager(target: Target) -> AsyncIterator[RequestFn]:
    """LLMManager.chat over the same provider: routing, attempt loop, circuit and stats included."""
    from spoon_llm.manager import LLMManager

    manager = LLMManager(_config(target), default_middleware=False)
    try:
        yield spoon_requests(target, manager)
    finally:
        await manager.cleanup()


@contextlib.asynccontextmanager
async def passthrough(target: Target) -> AsyncIterator[RequestFn]:
    """The floor of any layer over the provider: one extra coroutine that looks the provider up and calls it.

    No routing, retries, circuit or trace: what part 1b measures for it is the cost of merely wrapping the call
    (one more coroutine, code and data the CPU caches must hold besides the transport's), against which the
    manager's own figure can be read.
    """
    from spoon_llm.manager import LLMManager

    manager = LLMManager(_config(target), default_middleware=False)
    deployment = manager.router.deployments["openai"]
    await deployment.provider(manager.registry)
    conversation = list(target.messages)

    async def wrapped() -> object:
        instance = deployment.ready_provider() or await deployment.provider(manager.registry)
        return await instance.chat(conversation)

    async def call() -> object:
        return await wrapped()

    try:
        yield call
    finally:
        await manager.cleanup()


async def _batch_raw(target: Target, n: int, concurrency: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=target.openai_base_url, api_key=KEY, max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)
    messages: Any = list(target.messages)

    async def one() -> object:
        async with semaphore:
            return await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    await asyncio.gather(*(one() for _ in range(min(n, 500))))  # warm-up
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - started
    await client.close()
    return n / elapsed


async def _batch_manager(target: Target, n: int, concurrency: int) -> float:
    from spoon_llm.manager import LLMManager

    manager = LLMManager(_config(target), default_middleware=False)
    messages = list(target.messages)
    await manager.batch_chat([messages] * min(n, 500), concurrency=concurrency)  # warm-up
    started = time.perf_counter()
    results = await manager.batch_chat([messages] * n, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    assert len(results) == n
    await manager.cleanup()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", default="1,64")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batch-concurrency", type=int, default=256)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of part 1b (0 skips it)")
    parser.add_argument("--transport", choices=("native", "sdk"), default="native")
    args = parser.parse_args()
    global TRANSPORT
    TRANSPORT = args.transport
    levels = [int(c) for c in args.c.split(",")]
    operation = "chat_stream" if args.stream else "chat"
    clients = {"openai_sdk": CLIENTS["openai_sdk"], "spoon_provider": spoon_provider, "spoon_manager": spoon_manager}
    results = run_benchmark(clients, n=args.n, concurrency=levels, stream=args.stream, baseline="spoon_provider")
    by_key = {(r.client, r.concurrency): r for r in results}
    for c in levels:
        provider, manager = by_key[("spoon_provider", c)], by_key[("spoon_manager", c)]
        print(f"c={c}: manager.{operation} CPU/request = "
              f"{manager.cpu_us_per_req / provider.cpu_us_per_req:.3f}x the provider alone (separate processes)")
    if args.rounds:
        trio: dict[str, Any] = {"spoon_provider": spoon_provider, "spoon_manager": spoon_manager}
        if not args.stream:
            trio["passthrough"] = passthrough
        rounds = run_interleaved(trio, n=args.n, concurrency=levels, rounds=args.rounds, stream=args.stream)
        for c in levels:
            provider_us = statistics.median(rounds[("spoon_provider", c)])
            manager_us = statistics.median(rounds[("spoon_manager", c)])
            print(f"c={c}: interleaved, {args.rounds} rounds of {args.n}: provider {provider_us:.1f} us, "
                  f"manager.{operation} {manager_us:.1f} us CPU/request (medians) = {manager_us / provider_us:.3f}x")
            if ("passthrough", c) in rounds:
                floor_us = statistics.median(rounds[("passthrough", c)])
                print(f"c={c}: a bare pass-through coroutine over the same provider: {floor_us:.1f} us = "
                      f"{floor_us / provider_us:.3f}x (the floor of any wrapper)")
    if args.skip_batch:
        return
    with start_simulator() as sim:
        target = Target(base_url=sim.base_url)
        raw = asyncio.run(_batch_raw(target, args.batch, args.batch_concurrency))
        ours = asyncio.run(_batch_manager(target, args.batch, args.batch_concurrency))
    print(f"batch of {args.batch} at concurrency {args.batch_concurrency}: raw AsyncOpenAI gather+semaphore "
          f"{raw:,.0f} req/s, manager.batch_chat {ours:,.0f} req/s = {ours / raw:.2f}x")


if __name__ == "__main__":
    main()
