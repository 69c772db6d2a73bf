"""Helper process for the restart and shared-state tests: sends requests through a manager with the configured
economics chain and prints what happened as JSON.

Usage: python _spend_worker.py CONFIG_JSON REQUESTS [--concurrency N] [--start-at EPOCH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("requests", type=int)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()

    from spoon_llm import ConfigurationManager
    from spoon_llm.errors import BudgetExceededError, LLMError
    from spoon_llm.manager import LLMManager
    from spoon_llm.middleware import build_middleware, close_middleware

    config = ConfigurationManager(json.loads(args.config), env={})
    manager = LLMManager(config, default_middleware=False)
    chain = build_middleware(config, events=manager.events)
    for middleware in chain:
        manager.add_middleware(middleware)
    semaphore = asyncio.Semaphore(args.concurrency)
    outcome: dict[str, Any] = {"ok": 0, "budget": 0, "rate_limited": 0, "other": []}

    async def one() -> None:
        async with semaphore:
            try:
                await manager.chat("hello", max_tokens=100)
                outcome["ok"] += 1
            except BudgetExceededError:
                outcome["budget"] += 1
            except LLMError as exc:
                if "rate limit" in str(exc):
                    outcome["rate_limited"] += 1
                else:
                    outcome["other"].append(repr(exc))

    if args.start_at:
        await asyncio.sleep(max(args.start_at - time.time(), 0.0))  # all workers start together
    await asyncio.gather(*(one() for _ in range(args.requests)))
    outcome["status"] = {m.name: m.status() for m in chain}
    await manager.cleanup()
    await close_middleware(chain)
    json.dump(outcome, sys.stdout, default=str)


async def spend(data: dict[str, Any], requests: int, env: dict[str, str], *, concurrency: int | None = None,
                start_at: float | None = None) -> dict[str, Any]:
    """Run this worker in a child process with configuration ``data``; its outcome (it must exit cleanly)."""
    command = [sys.executable, __file__, json.dumps(data), str(requests)]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    if start_at is not None:
        command += ["--start-at", str(start_at)]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    result: dict[str, Any] = json.loads(out)
    return result


if __name__ == "__main__":
    asyncio.run(main())
