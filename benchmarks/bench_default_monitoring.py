"""What default monitoring costs the manager per request: ``LLMManager(config)`` vs ``monitoring=False``.

The older ``spoon_ai.llm`` manager fed ``get_metrics_collector()`` (and ``get_debug_logger()``) by default; ours
does too (everything but streams' time to first token, which ``enable_monitoring`` adds), and the issue's bound is
+3 CPU-us per request. Both managers run in one process over an in-memory
provider (no sockets: the manager's own CPU only), in alternating blocks of ``--block`` requests; the lowest block
of each is kept (the least disturbed by neighbours on a shared machine). ``--debug`` also asks for the
process-wide debug logger first, so default managers feed it too (its cost is the debug logger's, not the
default's).

Usage: python benchmarks/bench_default_monitoring.py [--blocks 16] [--block 2000] [--stream] [--debug]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_observability import _in_memory_provider, best_of_alternating_blocks  # noqa: E402


async def measure(blocks: int, block: int, stream: bool, debug: bool) -> tuple[float, float]:
    """(CPU-us per request without monitoring, with default monitoring), the lowest block of each."""
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager
    from spoon_llm.monitoring import get_debug_logger
    from spoon_llm.registry import get_global_registry

    get_global_registry().register("memory", _in_memory_provider(), replace=True)
    config = {"providers": {"memory": {"type": "memory", "api_key": "bench-in-memory-0000", "model": "m"}}}
    if debug:
        get_debug_logger()
    plain = LLMManager(ConfigurationManager(config, env={}), monitoring=False)
    default = LLMManager(ConfigurationManager(config, env={}))
    figures = await best_of_alternating_blocks(plain, default, blocks, block, stream)
    await plain.cleanup()
    await default.cleanup()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--block", type=int, default=2000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--debug", action="store_true", help="ask for the process-wide debug logger first")
    args = parser.parse_args()
    off, on = asyncio.run(measure(args.blocks, args.block, args.stream, args.debug))
    kind = "chat_stream" if args.stream else "chat"
    print(f"{kind}: monitoring=False {off:.2f} CPU-us/request, default monitoring {on:.2f} CPU-us/request, "
          f"+{on - off:.2f} CPU-us/request ({(on / off - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
