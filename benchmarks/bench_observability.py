"""What observability costs per request: the manager with monitoring attached vs the manager alone.

Part 1 (harness, one simulator process, all clients in one client process, ``--rounds`` alternating rounds of
``n`` requests each; see :func:`harness.run_interleaved`):

* ``manager``: ``LLMManager.chat`` with no observer (the baseline: the manager builds no event at all),
* ``manager_metrics``: the same with a ``MetricsCollector`` attached (debug logging off),
* ``manager_prom`` (``--all``): metrics plus the Prometheus exporter,
* ``manager_otel`` (``--all``): metrics plus OpenTelemetry spans into an SDK tracer provider with no exporter,
* ``manager_debug`` (``--all``): metrics plus the debug logger (history kept, log level WARNING).

The target: ``manager_metrics`` within 3% of ``manager`` in CPU per request, compared as the medians of the
rounds. Separate runs of the *same* client differ by up to ~10% on a shared 2-core box (a full garbage collection
more or less, CPU frequency, neighbours), more than the effect measured; alternating rounds in one process see
the same conditions.

Part 2 (one process, no sockets): ``manager.chat`` over an in-memory provider, in alternating blocks of 1,000
requests with and without observers (lowest block of each). It splits the overhead exactly: ``noop`` is what the
manager spends building and delivering events to an observer that does nothing; each monitoring setup adds its
own handling on top. The deltas are then shown as a share of the real request's CPU from part 1.

Usage: python benchmarks/bench_observability.py [-n 3000] [-c 1,32] [--rounds 10] [--stream] [--all] [--pin]
       [--transport native|sdk|aiohttp]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ClientFactory, RequestFn, Target, run_interleaved, spoon_requests, start_simulator  # noqa: E402

KEY = "bench-observability-key"


TRANSPORT: str | None = None  # --transport: None keeps the configuration's default


def _config(target: Target) -> Any:
    from spoon_llm import ConfigurationManager

    section: dict[str, Any] = {"api_key": KEY, "base_url": target.openai_base_url,
                               "model": target.model_or("gpt-4o-mini"), "max_connections": 1000,
                               "max_keepalive_connections": 1000}
    if TRANSPORT is not None:
        section["transport"] = TRANSPORT
    return ConfigurationManager({"providers": {"openai": section}}, env={})


def _manager_client(attach: Callable[[Any], None] | None) -> ClientFactory:
    @contextlib.asynccontextmanager
    async def client(target: Target) -> AsyncIterator[RequestFn]:
        from spoon_llm.manager import LLMManager

        manager = LLMManager(_config(target))
        if attach is not None:
            attach(manager)
        try:
            yield spoon_requests(target, manager)
        finally:
            await manager.cleanup()

    return client


def _metrics(manager: Any) -> None:
    from spoon_llm.monitoring import enable_monitoring

    enable_monitoring(manager, metrics=True, debug=False)


def _prometheus(manager: Any) -> None:
    from spoon_llm.monitoring import PrometheusExporter, enable_monitoring

    enable_monitoring(manager, metrics=True, prometheus=PrometheusExporter())


def _otel(manager: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from spoon_llm.monitoring import OpenTelemetryTracer, enable_monitoring

    enable_monitoring(manager, metrics=True, otel=OpenTelemetryTracer(TracerProvider()))


def _debug(manager: Any) -> None:
    from spoon_llm.monitoring import enable_monitoring

    enable_monitoring(manager, metrics=True, debug=True)


def _in_memory_provider() -> Any:
    """A provider that answers at once from memory: the manager's own CPU, with no I/O around it."""
    from spoon_llm.interface import LLMProviderInterface, ProviderMetadata
    from spoon_llm.types import LLMResponse, LLMResponseChunk, TokenUsage

    class InMemoryProvider(LLMProviderInterface):
        async def initialize(self, config: Any) -> None:
            pass

        async def chat(self, messages: Any, **kwargs: Any) -> LLMResponse:
            return LLMResponse(content="hi", provider="memory", model="m",
                               usage=TokenUsage(input_tokens=9, output_tokens=12))

        async def chat_stream(self, messages: Any, callbacks: Any = None, **kwargs: Any) -> Any:
            for i in range(1, 6):
                yield LLMResponseChunk(delta="x", content="x" * i)
            yield LLMResponseChunk(kind="final", content="xxxxx", finish_reason="stop",
                                   usage=TokenUsage(input_tokens=9, output_tokens=12))

        async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
            return await self.chat([])

        async def chat_with_tools(self, messages: Any, tools: Any, **kwargs: Any) -> LLMResponse:
            return await self.chat([])

        def get_metadata(self) -> ProviderMetadata:
            return ProviderMetadata(name="memory")

        async def health_check(self) -> bool:
            return True

        async def cleanup(self) -> None:
            pass

    return InMemoryProvider


async def _in_process_deltas(attachers: dict[str, Callable[[Any], None]], stream: bool,
                             blocks: int = 12, block: int = 1000) -> dict[str, float]:
    """CPU-us per request each setup adds over no observer, from alternating blocks (lowest block of each)."""

    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager
    from spoon_llm.registry import get_global_registry

    get_global_registry().register("memory", _in_memory_provider(), replace=True)
    config = {"providers": {"memory": {"type": "memory", "api_key": "bench-in-memory-0000", "model": "m"}}}
    deltas: dict[str, float] = {}
    for name, attach in attachers.items():
        # Two managers, one plain and one observed (middleware cannot be detached), run in alternating blocks.
        plain, observed = LLMManager(ConfigurationManager(config, env={})), LLMManager(ConfigurationManager(config,
                                                                                                            env={}))
        attach(observed)
        plain_us, observed_us = await best_of_alternating_blocks(plain, observed, blocks, block, stream)
        deltas[name] = observed_us - plain_us
        await plain.cleanup()
        await observed.cleanup()
    return deltas



async def best_of_alternating_blocks(plain: Any, other: Any, blocks: int, block: int,
                                     stream: bool) -> tuple[float, float]:
    """CPU-µs per request of ``plain`` and ``other`` (managers), the lowest of their alternating blocks.

    Alternating blocks let drift and neighbours' load hit both alike; the first block of each is warm-up.
    """
    import time

    best = {False: float("inf"), True: float("inf")}
    for index in range(blocks + 2):
        manager = other if index % 2 else plain
        started = time.process_time()
        for _ in range(block):
            if stream:
                [chunk async for chunk in manager.chat_stream("hi")]
            else:
                await manager.chat("hi")
        if index >= 2:
            best[manager is other] = min(best[manager is other], (time.process_time() - started) / block * 1e6)
    return best[False], best[True]

def main() -> None:
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("-c", default="1,32")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--all", action="store_true", help="also Prometheus, OpenTelemetry and the debug logger")
    parser.add_argument("--pin", action="store_true", help="pin the simulator to CPU 0 and the clients to the rest")
    parser.add_argument("--transport", default=None, help="the openai provider's transport (native, sdk, aiohttp)")
    args = parser.parse_args()
    global TRANSPORT
    TRANSPORT = args.transport
    sim_cpus = None
    if args.pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            sim_cpus = {cpus[0]}
            os.sched_setaffinity(0, set(cpus[1:]))
    levels = [int(c) for c in args.c.split(",")]
    attachers: dict[str, Callable[[Any], None] | None] = {"manager": None, "manager_metrics": _metrics}
    if args.all:
        attachers.update(manager_prom=_prometheus, manager_otel=_otel, manager_debug=_debug)
    clients = {name: _manager_client(attach) for name, attach in attachers.items()}
    with start_simulator(cpus=sim_cpus) as sim:
        rounds = run_interleaved(clients, n=args.n, concurrency=levels, rounds=args.rounds, stream=args.stream,
                                 simulator=sim)
    medians = {key: statistics.median(values) for key, values in rounds.items()}
    print(f"Part 1: median CPU per request over {args.rounds} alternating rounds of n={args.n}")
    for c in levels:
        base = medians[("manager", c)]
        print(f"c={c}: manager {base:,.1f} CPU-us/request")
        for name in clients:
            if name != "manager":
                ratio = medians[(name, c)] / base
                print(f"c={c}: {name} {medians[(name, c)]:,.1f} CPU-us/request = {ratio:.3f}x the "
                      f"manager without observers ({(ratio - 1) * 100:+.1f}%)")
    print("\nPart 2: what each setup adds per request, in one process over an in-memory provider (no sockets)")
    in_process: dict[str, Callable[[Any], None]] = {"noop": lambda manager: manager.add_observer(lambda event: None)}
    in_process.update({name: attach for name, attach in attachers.items() if attach is not None})
    deltas = asyncio.run(_in_process_deltas(in_process, args.stream))
    for name, delta in deltas.items():
        shares = ", ".join(f"{delta / medians[('manager', c)] * 100:.1f}% at c={c}" for c in levels)
        print(f"{name}: +{delta:.1f} CPU-us/request = {shares} of the real request (part 1)")


if __name__ == "__main__":
    main()
