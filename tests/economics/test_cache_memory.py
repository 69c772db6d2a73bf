"""What a memory cache holds in RAM: about what its byte bound counts, not the buffers its entries were written in."""

from __future__ import annotations

import asyncio
import json
import sys

from spoon_llm.testing import ProviderSimulator

from .conftest import KEYS

#: Fills a memory cache with misses through a manager (one process of its own, so its peak RSS is its own) and
#: prints the peak RSS it grew by per entry, with the bytes the cache says it holds per entry.
_FILL = """
import asyncio, json, resource, sys
from spoon_llm import ConfigurationManager
from spoon_llm.manager import LLMManager

config, n = json.loads(sys.argv[1]), int(sys.argv[2])

async def main():
    async with LLMManager(ConfigurationManager(config, env={})) as manager:
        for i in range(200):  # warm-up: connections, imports, first allocations
            await manager.chat(f"warm-up question {i}")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for i in range(n):
            await manager.chat(f"question number {i} about the weather in a city")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        cache = manager.get_status()["middleware"]["cache"]
        print(json.dumps({"rss_per_entry": grown * 1024 / n, "counted_per_entry": cache["bytes"] / cache["entries"],
                          "entries": cache["entries"]}))

asyncio.run(main())
"""


async def test_held_entries_take_about_what_the_byte_bound_counts(sim: ProviderSimulator) -> None:
    # orjson writes into a 4 KiB buffer and keeps it: held as written, each entry (its key and its answer) would
    # take ~8 KiB of RAM while the cache counted a few hundred bytes toward max_bytes.
    n = 3000
    config = {"providers": {"primary": {"type": "openai", "base_url": sim.openai_base_url, "api_key": KEYS["primary"],
                                        "model": "model-primary"}},
              "cache": {"enabled": True, "max_entries": 100_000}}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", _FILL, json.dumps(config), str(n),
                                                   stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert process.returncode == 0
    figures = json.loads(out)
    assert figures["entries"] == n + 200
    assert 200 < figures["counted_per_entry"] < 2000
    assert figures["rss_per_entry"] < 3 * figures["counted_per_entry"] + 1024, figures
