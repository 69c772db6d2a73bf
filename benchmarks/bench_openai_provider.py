"""CPU per request of spoon-llm's ``OpenAIProvider`` vs calling ``AsyncOpenAI`` directly, against the simulator.

Clients (all ``max_retries=0``, same model and messages, whole answer read):

* ``openai_sdk``          -- ``AsyncOpenAI().chat.completions.create`` on its default httpx2 client (the baseline)
* ``openai_sdk_aiohttp``  -- the same on the SDK's aiohttp client (``DefaultAioHttpClient``)
* ``spoon``               -- ``OpenAIProvider.chat`` / ``chat_stream`` with ``transport = "sdk"`` (httpx2)
* ``spoon_aiohttp``       -- the same with ``transport = "aiohttp"``

Our provider sends the body through the SDK's low-level ``post`` and decodes the JSON / SSE bytes with its own
mapping into ``LLMResponse`` / chunks; the baseline builds the SDK's pydantic objects. Streams: our provider asks
for ``stream_options.include_usage`` (its default), so the simulator sends it one more (usage) event than the
baseline gets -- the comparison is conservative.

Usage::

    .venv/bin/python benchmarks/bench_openai_provider.py                  # non-stream and stream, c=1 and c=64
    .venv/bin/python benchmarks/bench_openai_provider.py -n 3000 -c 1,128 --mode stream
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CLIENTS, RequestFn, Result, Target, run_benchmark, spoon_requests  # noqa: E402

MODEL = "gpt-4o-mini"


@contextlib.asynccontextmanager
async def openai_sdk_aiohttp(target: Target) -> AsyncIterator[RequestFn]:
    """``AsyncOpenAI`` on the SDK's aiohttp client."""
    import openai

    client = openai.AsyncOpenAI(base_url=target.openai_base_url, api_key="sk-bench", max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    messages: Any = list(target.messages)

    async def call() -> object:
        return await client.chat.completions.create(model=MODEL, messages=messages)

    async def call_stream() -> object:
        stream = await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        return [chunk async for chunk in stream]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.close()


def _spoon(transport: str) -> Any:
    @contextlib.asynccontextmanager
    async def factory(target: Target) -> AsyncIterator[RequestFn]:
        from spoon_llm.providers.openai import OpenAIProvider

        provider = OpenAIProvider()
        await provider.initialize({"api_key": "sk-bench-key-000000", "base_url": target.openai_base_url,
                                   "model": MODEL, "transport": transport, "max_connections": 1000,
                                   "max_keepalive_connections": 1000})
        try:
            yield spoon_requests(target, provider)
        finally:
            await provider.cleanup()

    return factory


FACTORIES = {
    "openai_sdk": CLIENTS["openai_sdk"],
    "openai_sdk_aiohttp": openai_sdk_aiohttp,
    "spoon": _spoon("sdk"),
    "spoon_aiohttp": _spoon("aiohttp"),
}


def _ratio(results: list[Result], client: str, base: str, c: int) -> float:
    by = {(r.client, r.concurrency): r for r in results}
    return by[(client, c)].cpu_us_per_req / by[(base, c)].cpu_us_per_req


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="measured requests per client and concurrency")
    parser.add_argument("-c", "--concurrency", default="1,64", help="comma-separated concurrency levels")
    parser.add_argument("--mode", choices=["both", "chat", "stream"], default="both")
    parser.add_argument("--clients", default=",".join(FACTORIES), help="subset of: " + ", ".join(FACTORIES))
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    clients = {name: FACTORIES[name] for name in args.clients.split(",")}
    modes = {"both": [False, True], "chat": [False], "stream": [True]}[args.mode]
    summary = []
    for stream in modes:
        label = "stream" if stream else "chat"
        print(f"\n== {label}: n={args.n} per client and concurrency ==")
        results = run_benchmark(clients, n=args.n, concurrency=levels, stream=stream, baseline="openai_sdk",
                                model=MODEL)
        for c in levels:
            for ours, base in (("spoon", "openai_sdk"), ("spoon_aiohttp", "openai_sdk"),
                               ("spoon_aiohttp", "openai_sdk_aiohttp")):
                if ours in clients and base in clients:
                    summary.append(f"{label:<7} c={c:<4} {ours:<14} / {base:<19} CPU per request "
                                   f"x{_ratio(results, ours, base, c):.2f}")
    print("\n== CPU-per-request ratios (target: spoon / openai_sdk <= 1.10) ==")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
