"""CPU per request of AnthropicProvider / GeminiProvider against calling their SDKs directly.

Each provider is measured beside its own SDK (the baseline) with the shared harness, against the simulator
in a separate process, non-stream and stream; the ratio column is our CPU per request over the SDK's.
The target is <= 1.10.

    .venv/bin/python benchmarks/bench_anthropic_gemini.py                 # n=2000, c=1,32
    .venv/bin/python benchmarks/bench_anthropic_gemini.py -n 500 -c 1 --json out.json
    .venv/bin/python benchmarks/bench_anthropic_gemini.py --pin    # simulator on CPU 0, clients on the others
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CLIENTS, RequestFn, Result, Target, run_benchmark, spoon_requests  # noqa: E402

ANTHROPIC_MODEL = "claude-sonnet-4-6"
GEMINI_MODEL = "gemini-2.5-flash"


@contextlib.asynccontextmanager
async def spoon_anthropic(target: Target) -> AsyncIterator[RequestFn]:
    """spoon-llm's AnthropicProvider, configured like the harness's anthropic_sdk client."""
    from spoon_llm.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider()
    await provider.initialize({"api_key": "sk-ant-bench", "base_url": target.anthropic_base_url,
                               "model": target.model_or(ANTHROPIC_MODEL), "max_connections": 1000,
                               "max_keepalive_connections": 1000})
    try:
        yield spoon_requests(target, provider, max_tokens=target.max_tokens)
    finally:
        await provider.cleanup()


@contextlib.asynccontextmanager
async def spoon_gemini(target: Target) -> AsyncIterator[RequestFn]:
    """spoon-llm's GeminiProvider, configured like the harness's gemini_sdk client."""
    from spoon_llm.providers.gemini import GeminiProvider

    provider = GeminiProvider()
    await provider.initialize({"api_key": "bench-key", "base_url": target.gemini_base_url,
                               "model": target.model_or(GEMINI_MODEL), "api_version": "v1",
                               "max_connections": 1000, "max_keepalive_connections": 1000})
    # The SDK baseline sends the prompt as one user turn; so do we.
    prompt = " ".join(m["content"] for m in target.messages if m["role"] == "user")
    try:
        yield spoon_requests(target, provider, [{"role": "user", "content": prompt}])
    finally:
        await provider.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="measured requests per client and concurrency")
    parser.add_argument("-c", "--concurrency", default="1,32", help="comma-separated concurrency levels")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    parser.add_argument("--pin", action="store_true", help="pin the simulator to CPU 0 and the clients to the rest")
    args = parser.parse_args(argv)
    sim_cpus = None
    if args.pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            sim_cpus = {cpus[0]}
            os.sched_setaffinity(0, set(cpus[1:]))
    levels = [int(c) for c in args.concurrency.split(",")]
    pairs = {
        "anthropic": ({"anthropic_sdk": CLIENTS["anthropic_sdk"], "spoon_anthropic": spoon_anthropic},
                      ANTHROPIC_MODEL),
        "gemini": ({"gemini_sdk": CLIENTS["gemini_sdk"], "spoon_gemini": spoon_gemini}, GEMINI_MODEL),
    }
    everything: list[Result] = []
    summary: list[str] = []
    for vendor, (clients, model) in pairs.items():
        for stream in (False, True):
            label = f"{vendor} {'stream' if stream else 'non-stream'}"
            print(f"\n== {label}")
            results = run_benchmark(clients, n=args.n, concurrency=levels, stream=stream, model=model,
                                    sim_cpus=sim_cpus)
            everything.extend(results)
            for result in results:
                if result.client.startswith("spoon") and result.ratios:
                    summary.append(f"{label:<22} c={result.concurrency:<4} cpu/req ratio "
                                   f"x{result.ratios['cpu_per_req']:.3f}  ({result.cpu_us_per_req:,.0f} us)")
    print("\n== our CPU per request / the SDK's (target <= 1.10)")
    print("\n".join(summary))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in everything], indent=2))


if __name__ == "__main__":
    main()
