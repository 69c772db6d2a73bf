"""What the usage-economics middleware (budget guard + rate limiter + cost accounting, state in memory) adds
to the CPU of one request.

Part 1 (harness, one run, side by side): ``LLMManager.chat`` without middleware vs with the chain from
``build_middleware`` (a budget, per-key rpm/tpm limits, priced model), against the simulator in its own process.
Part 2: both managers in alternating rounds in one process (drift and neighbours' load hit both alike), medians.
Part 3: the chain's own hooks timed in-process on a synthetic attempt (no network), in microseconds.

Usage: python benchmarks/bench_middleware.py [-n 3000] [-c 1,32] [--stream] [--rounds 8] [--transport native|sdk]
       [--hooks-only] [--ledger memory|sqlite]

``--hooks-only`` runs part 3 alone (the cheapest reliable figure). ``--ledger sqlite`` keeps the usage ledger and
budget spend in a SQLite file (in a temporary directory), as a configuration with a budget and no ``[state]``
section does.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RequestFn, Target, run_benchmark, spoon_requests, start_simulator  # noqa: E402

KEY = "bench-economics-key"
MODEL = "gpt-4o-mini"
#: The provider transport under test (``native`` is the default; ``sdk`` is the official openai SDK).
TRANSPORT = "native"
#: Where the usage ledger and budget spend live (``memory`` or ``sqlite``).
LEDGER = "memory"
_STATE_DIR: list[str] = []
_files = itertools.count()


def _state_dir() -> str:
    """A temporary directory for SQLite files, made once (forked measuring processes share it), removed at exit."""
    if not _STATE_DIR:
        _STATE_DIR.append(tempfile.mkdtemp(prefix="bench-ledger-"))
        atexit.register(shutil.rmtree, _STATE_DIR[0], True)
    return _STATE_DIR[0]


def _config(base_url: str, economics: bool) -> Any:
    from spoon_llm import ConfigurationManager

    section: dict[str, Any] = {"api_key": KEY, "base_url": base_url, "model": MODEL, "max_connections": 1000,
                               "max_keepalive_connections": 1000, "transport": TRANSPORT}
    data: dict[str, Any] = {"providers": {"openai": section}}
    if economics:
        section.update(rpm=30_000, tpm=150_000_000)  # OpenAI's top tier for gpt-4o-mini
        data["budget"] = {"limit": 1_000_000.0}
        data["state"] = {"backend": "memory", "ledger": LEDGER}
        if LEDGER == "sqlite":
            data["state"]["path"] = str(Path(_state_dir()) / f"usage-{os.getpid()}-{next(_files)}.db")
    return ConfigurationManager(data, env={})


@contextlib.asynccontextmanager
async def _manager(target: Target, economics: bool) -> AsyncIterator[RequestFn]:
    from spoon_llm.manager import LLMManager
    from spoon_llm.middleware import build_middleware, close_middleware

    config = _config(target.openai_base_url, economics)
    chain = build_middleware(config) if economics else []
    manager = LLMManager(config, middleware=chain)
    try:
        yield spoon_requests(target, manager, tags={"user": "bench"})
    finally:
        await manager.cleanup()
        await close_middleware(chain)


@contextlib.asynccontextmanager
async def manager_plain(target: Target) -> AsyncIterator[RequestFn]:
    """LLMManager.chat with no middleware."""
    async with _manager(target, economics=False) as call:
        yield call


@contextlib.asynccontextmanager
async def manager_economics(target: Target) -> AsyncIterator[RequestFn]:
    """LLMManager.chat with budget guard + rate limiter + cost accounting, all in memory."""
    async with _manager(target, economics=True) as call:
        yield call


async def _hooks_us(n: int) -> float:
    """Microseconds of CPU per attempt spent in the chain's before/after hooks (in-process, no network)."""
    from spoon_llm.manager import LLMManager
    from spoon_llm.middleware import AttemptContext, Middleware, build_middleware, close_middleware
    from spoon_llm.types import LLMResponse, Message, TokenUsage

    config = _config("http://127.0.0.1:9/v1", economics=True)
    chain = build_middleware(config)
    manager = LLMManager(config, default_middleware=False)
    deployment = manager.router.deployments["openai"]
    messages = [Message(role="user", content="Write one sentence about benchmarks.")]
    usage = TokenUsage(input_tokens=14, output_tokens=40)
    # As the manager does: hooks bound once, those a middleware does not override left out.
    befores = [m.before_attempt for m in chain if type(m).before_attempt is not Middleware.before_attempt]
    afters = [m.after_attempt for m in reversed(chain) if type(m).after_attempt is not Middleware.after_attempt]

    async def one(i: int) -> None:
        ctx = AttemptContext(f"req-{i}", "chat", deployment, None, messages, {}, {"user": "bench"})
        for before in befores:  # await only what a hook returns
            pending = before(ctx)
            if pending is not None:
                await pending
        response = LLMResponse(content="ok", model=MODEL, usage=usage)
        for after in afters:
            pending = after(ctx, response=response, usage=usage)
            if pending is not None:
                await pending

    for i in range(500):  # warm-up: price resolution, imports
        await one(i)
    # Start from a clean collector, so that a full collection owed to start-up garbage does not land in the
    # measured loop (what each attempt leaves for the collector is still measured).
    gc.collect()
    started = time.process_time()
    for i in range(n):
        await one(i)
    spent = time.process_time() - started
    # The same loop without hooks, to subtract building the context and the response.
    started = time.process_time()
    for i in range(n):
        AttemptContext(f"req-{i}", "chat", deployment, None, messages, {}, {"user": "bench"})
        LLMResponse(content="ok", model=MODEL, usage=usage)
    spent -= time.process_time() - started
    await close_middleware(chain)
    return spent / n * 1e6


async def _interleaved(base_url: str, rounds: int, n: int) -> tuple[list[float], list[float]]:
    """CPU-us per request of both managers in alternating rounds in one process (drift hits both alike)."""
    target = Target(base_url=base_url)
    plain_us: list[float] = []
    econ_us: list[float] = []
    async with manager_plain(target) as plain, manager_economics(target) as econ:
        for _ in range(300):
            await plain()
            await econ()
        for _ in range(rounds):
            for call, out in ((plain, plain_us), (econ, econ_us)):
                started = time.process_time()
                for _ in range(n):
                    await call()
                out.append((time.process_time() - started) / n * 1e6)
    return plain_us, econ_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("-c", default="1,32")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--transport", default="native", choices=["native", "sdk", "aiohttp"])
    parser.add_argument("--hooks-only", action="store_true", help="run part 3 (the hooks in-process) only")
    parser.add_argument("--hooks-n", type=int, default=20_000,
                        help="attempts timed in part 3 (at most ~29,000: more exceed the rpm limit)")
    parser.add_argument("--ledger", default="memory", choices=["memory", "sqlite"])
    args = parser.parse_args()
    global TRANSPORT, LEDGER
    TRANSPORT = args.transport  # read by the forked measuring processes
    LEDGER = args.ledger
    if LEDGER == "sqlite":
        _state_dir()  # made by this process, before any fork
    if args.hooks_only:
        hooks = asyncio.run(_hooks_us(args.hooks_n))
        print(f"hooks alone ({args.ledger} ledger): {hooks:.1f} us per attempt")
        return
    levels = [int(c) for c in args.c.split(",")]
    results = run_benchmark({"manager": manager_plain, "manager+econ": manager_economics}, n=args.n,
                            concurrency=levels, stream=args.stream, baseline="manager")
    by_key = {(r.client, r.concurrency): r for r in results}
    for c in levels:
        plain, econ = by_key[("manager", c)], by_key[("manager+econ", c)]
        extra = econ.cpu_us_per_req / plain.cpu_us_per_req - 1
        print(f"c={c}: budget+rate limit+cost add {extra * 100:+.1f}% CPU per request "
              f"({plain.cpu_us_per_req:,.0f} -> {econ.cpu_us_per_req:,.0f} us)")
    with start_simulator() as sim:
        plain_us, econ_us = asyncio.run(_interleaved(sim.base_url, args.rounds, 2000))
    plain_med, econ_med = statistics.median(plain_us), statistics.median(econ_us)
    print(f"interleaved, c=1, {args.rounds} rounds x 2000: {plain_med:,.0f} -> {econ_med:,.0f} us per request "
          f"= {(econ_med / plain_med - 1) * 100:+.1f}% (medians)")
    hooks = asyncio.run(_hooks_us(args.hooks_n))
    plain_cpu = by_key[("manager", levels[0])].cpu_us_per_req
    print(f"hooks alone: {hooks:.1f} us per attempt = {hooks / plain_cpu * 100:.1f}% of a plain manager request "
          f"at c={levels[0]} ({plain_cpu:,.0f} us)")


if __name__ == "__main__":
    main()
