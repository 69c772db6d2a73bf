"""What typed output costs: CPU per request of ``chat`` with ``response_format=Model`` against a plain ``chat``.

The simulator runs in its own process (its CPU is not counted); both kinds of request go through the same manager
in alternating rounds and the median per-request CPU of each is reported, with the difference (the schema lookup,
the wire form of the schema and validating the answer into the model). Also: the layer check a plain call pays.

Usage: python benchmarks/bench_structured.py [-n 500] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import start_simulator  # noqa: E402


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    age: int
    nickname: str | None = None
    addresses: list[Address]


async def _run(port: int, n: int, rounds: int) -> None:
    from spoon_llm import ConfigurationManager, LLMManager

    manager = LLMManager(ConfigurationManager({"providers": {"openai": {
        "api_key": "bench-structured-key", "base_url": f"http://127.0.0.1:{port}/v1", "model": "gpt-4o-mini"}}},
        env={}))
    plain: list[float] = []
    typed: list[float] = []
    try:
        for _ in range(20):  # warm up connections, schema caches, pydantic validators
            await manager.chat("hi", response_format=Person)
            await manager.chat("hi")
        for _ in range(rounds):
            for kind, bucket in (("plain", plain), ("typed", typed)):
                started = time.process_time()
                for _ in range(n):
                    if kind == "plain":
                        await manager.chat("hi", json=True)
                    else:
                        response = await manager.chat("hi", response_format=Person)
                        assert isinstance(response.parsed, Person)
                bucket.append((time.process_time() - started) / n * 1e6)
    finally:
        await manager.cleanup()
    p, t = statistics.median(plain), statistics.median(typed)
    print(f"CPU per request, median of {rounds} rounds of {n}: plain chat (json mode) {p:.0f} us, "
          f"response_format=Person {t:.0f} us, difference {t - p:+.0f} us")


def _layer_check() -> None:
    from spoon_llm.manager import _wants_layer

    kwargs = {"temperature": 0.2, "max_tokens": 100}
    def best(fn: object) -> float:
        return min(timeit.repeat(fn, number=200_000, repeat=5)) / 200_000 * 1e9  # type: ignore[arg-type]

    per_call = best(lambda: _wants_layer(kwargs)) - best(lambda: None)  # minus the timing loop's own call
    print(f"layer check on a plain call's keywords: {per_call:.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    _layer_check()
    with start_simulator() as sim:
        asyncio.run(_run(sim.port, args.n, args.rounds))


if __name__ == "__main__":
    main()
