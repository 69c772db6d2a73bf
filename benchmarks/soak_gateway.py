"""Gateway soak: N requests through ``spoon-llm serve``; its resident memory after warm-up against the end.

The gateway (the same configuration as ``bench_gateway.py``: master key, default accounting, metrics, the JSON
access log) runs over the provider simulator; requests go at a fixed concurrency, alternating JSON and streamed
answers unless told otherwise. RSS (``VmRSS`` of the gateway's process tree) is read after the warm-up and at
every tenth of the run; the report gives the growth from warm-up to the end (target: within 5%).

With the default accounting the process keeps the latest 100,000 usage records for cost history (the cost
tracker's ``max_records``, and the memory ledger's), so RSS rises until that many requests were served and is
flat after: warm up past it (``--warmup 110000``) to measure the flat part.

    python benchmarks/soak_gateway.py -n 1000000 -c 32
    python benchmarks/soak_gateway.py -n 200000 -c 32 --state redis --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import MASTER_KEY, MESSAGES, free_port, gateway_config, process_tree, spawn  # noqa: E402
from harness import REPO_ROOT, start_simulator  # noqa: E402


def tree_rss_kib(pid: int) -> int:
    """Resident memory (KiB) of ``pid`` and its descendants."""
    total = 0
    for current in process_tree(pid):
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


async def run(url: str, pid: int, n: int, warmup: int, concurrency: int, mode: str) -> dict[str, object]:
    bodies = {stream: json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 64, "stream": stream,
                                  **({"stream_options": {"include_usage": True}} if stream else {})}).encode()
              for stream in (False, True)}
    headers = {"content-type": "application/json", "authorization": f"Bearer {MASTER_KEY}"}
    errors = 0
    issued = 0

    async def drive(session: aiohttp.ClientSession, count: int) -> None:
        nonlocal errors, issued

        async def worker() -> None:
            nonlocal errors, issued
            while issued < count:
                index = issued
                issued += 1
                stream = mode == "stream" or (mode == "mixed" and index % 2 == 1)
                async with session.post(url, data=bodies[stream], headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    samples: list[tuple[int, int]] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await drive(session, warmup)
        issued = 0
        baseline = tree_rss_kib(pid)
        samples.append((0, baseline))
        started = time.perf_counter()
        step = max(1, n // 10)
        done = 0
        while done < n:
            issued = 0
            batch = min(step, n - done)
            await drive(session, batch)
            done += batch
            samples.append((done, tree_rss_kib(pid)))
            print(f"  {done:>9} requests  RSS {samples[-1][1] / 1024:8.1f} MiB  "
                  f"({done / (time.perf_counter() - started):.0f} req/s)", flush=True)
    end = samples[-1][1]
    return {"requests": n, "warmup": warmup, "concurrency": concurrency, "mode": mode, "errors": errors,
            "rss_after_warmup_mib": round(baseline / 1024, 1), "rss_end_mib": round(end / 1024, 1),
            "growth_pct": round((end - baseline) / baseline * 100, 2),
            "samples": [(count, round(kib / 1024, 1)) for count, kib in samples]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="requests after the warm-up")
    parser.add_argument("-c", type=int, default=32, help="requests at once")
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--mode", choices=["json", "stream", "mixed"], default="mixed")
    parser.add_argument("--state", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", help="write the result to this file")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOON_LLM")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    with start_simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        upstream = f"{sim.base_url}/v1"
        port = free_port()
        config = gateway_config(upstream, Path(tmp), args.state, args.redis_url)
        with spawn([sys.executable, "-m", "spoon_llm", "serve", "--config", str(config), "--port", str(port)],
                   f"http://127.0.0.1:{port}/health", env, tmp) as gateway:
            result = asyncio.run(run(f"http://127.0.0.1:{port}/v1/chat/completions", gateway.pid, args.n,
                                     args.warmup, args.c, args.mode))
    print(f"\n{args.mode}, c={args.c}, {args.n} requests after {args.warmup} of warm-up, state={args.state}: "
          f"RSS {result['rss_after_warmup_mib']} MiB -> {result['rss_end_mib']} MiB "
          f"({result['growth_pct']:+.2f}%), {result['errors']} errors")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
