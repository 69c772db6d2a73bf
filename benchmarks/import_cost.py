"""What ``import spoon_llm`` costs over a bare interpreter: wall time and peak RSS, median of fresh processes.

Usage: python benchmarks/import_cost.py [--runs 15] [--module spoon_llm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import resource, sys, time
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
heavy = [m for m in ("openai", "anthropic", "google.genai", "fastapi", "redis", "genai_prices") if m in sys.modules]
print(__import__("json").dumps({{"elapsed": elapsed, "rss_kb": rss_kb, "heavy": heavy}}))
"""


def probe(statement: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--module", default="spoon_llm")
    args = parser.parse_args()
    bare = [probe("pass") for _ in range(args.runs)]
    loaded = [probe(f"import {args.module}") for _ in range(args.runs)]
    ms = statistics.median(r["elapsed"] for r in loaded) * 1000  # type: ignore[misc]
    rss = (statistics.median(r["rss_kb"] for r in loaded) - statistics.median(r["rss_kb"] for r in bare)) / 1024  # type: ignore[misc]
    print(
        f"import {args.module}: {ms:.1f} ms, +{rss:.1f} MB peak RSS over a bare interpreter "
        f"(median of {args.runs} fresh processes); heavy modules loaded: {loaded[0]['heavy'] or 'none'}"
    )


if __name__ == "__main__":
    main()
