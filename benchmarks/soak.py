"""Soak: many requests through the default middleware, watching memory, file descriptors and lost requests.

Not a test: a long run whose figures go into the release notes. A simulator process (``spoon_llm.testing``)
answers on 127.0.0.1; one manager, built from a configuration with a budget (SQLite ledger in a temporary
directory), per-deployment rpm/tpm limits, pricing and a fallback chain, so every request passes the budget guard,
the rate limiter and cost accounting. ``--stream-share`` of the requests are streamed.

Reported: RSS every ``--every`` requests, file descriptors before and after, requests lost (neither an answer
nor an ``LLMError``), untyped exceptions, the manager's counters, and RSS growth after the warm-up (the first
report).

Usage: python benchmarks/soak.py [-n 100000] [-c 256] [--every 10000] [--stream-share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import start_simulator  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process, in MiB (Linux ``/proc``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    """File descriptors open in this process (Linux ``/proc``)."""
    return len(os.listdir("/proc/self/fd"))


def _config(base_url: str, state_dir: str) -> dict[str, Any]:
    section = {"type": "openai", "base_url": base_url + "/v1", "max_connections": 512,
               "max_keepalive_connections": 512, "rpm": 10_000_000, "tpm": 1_000_000_000}
    return {
        "providers": {
            "primary": {**section, "api_key": "soak-primary-key", "model": "soak-primary"},
            "backup": {**section, "api_key": "soak-backup-key", "model": "soak-backup"},
        },
        "fallback_chain": ["primary", "backup"],
        "pricing": {m: {"input_per_1m": 1.0, "output_per_1m": 2.0} for m in ("soak-primary", "soak-backup")},
        "budget": {"limit": 1_000_000.0},
        "state": {"path": str(Path(state_dir) / "state.db")},
    }


async def soak(base_url: str, total: int, concurrency: int, every: int, stream_share: float) -> dict[str, Any]:
    from spoon_llm import ConfigurationManager
    from spoon_llm.errors import LLMError
    from spoon_llm.manager import LLMManager

    outcome = {"answers": 0, "typed_errors": 0, "untyped": 0}
    untyped: list[str] = []
    reports: list[tuple[int, float]] = []
    stream_every = round(1 / stream_share) if stream_share > 0 else 0
    with tempfile.TemporaryDirectory() as state_dir:
        gc.collect()
        fds_before = open_fds()
        manager = LLMManager(ConfigurationManager(_config(base_url, state_dir), env={}))
        issued = 0
        done = 0
        started = time.perf_counter()

        async def one(index: int) -> None:
            if stream_every and index % stream_every == 0:
                async for _ in manager.chat_stream(f"soak {index}", max_tokens=16):
                    pass
            else:
                await manager.chat(f"soak {index}", max_tokens=16)

        async def worker() -> None:
            nonlocal issued, done
            while issued < total:
                index = issued
                issued += 1
                try:
                    await one(index)
                    outcome["answers"] += 1
                except LLMError:
                    outcome["typed_errors"] += 1
                except Exception as exc:  # noqa: BLE001 - counted: the point of the run
                    outcome["untyped"] += 1
                    if len(untyped) < 5:
                        untyped.append(repr(exc))
                done += 1
                if done % every == 0:
                    reports.append((done, rss_mb()))
                    print(f"{done:>8} requests  rss {reports[-1][1]:8.1f} MiB  "
                          f"{done / (time.perf_counter() - started):8.0f} req/s", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        stats = manager.get_stats()
        await manager.cleanup()
        gc.collect()
        fds_after = open_fds()
    lost = total - outcome["answers"] - outcome["typed_errors"] - outcome["untyped"]
    warm = reports[0][1] if reports else float("nan")
    return {"requests": total, "concurrency": concurrency, "seconds": round(elapsed, 1),
            **outcome, "lost": lost, "untyped_examples": untyped, "fds_before": fds_before, "fds_after": fds_after,
            "rss_after_warmup_mb": round(warm, 1), "rss_end_mb": round(reports[-1][1], 1) if reports else None,
            "rss_growth_after_warmup_mb": round(reports[-1][1] - warm, 1) if reports else None,
            "stats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--requests", type=int, default=100_000)
    parser.add_argument("-c", "--concurrency", type=int, default=256)
    parser.add_argument("--every", type=int, default=10_000, help="report RSS every N requests")
    parser.add_argument("--stream-share", type=float, default=0.1, help="share of requests that are streamed")
    args = parser.parse_args()
    with start_simulator() as simulator:
        result = asyncio.run(soak(simulator.base_url, args.requests, args.concurrency, args.every,
                                  args.stream_share))
    for key, value in result.items():
        print(f"{key}: {value}")
    if result["lost"] or result["untyped"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
