"""Helper process of the restart tests: opens a manager on a configuration file, prints what its status says at
start, sends requests, and prints the outcome as JSON.

Usage: python _restart_worker.py CONFIG_FILE REQUESTS MAX_TOKENS
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> None:
    path, requests, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from spoon_llm import ConfigurationManager, LLMManager
    from spoon_llm.errors import BudgetExceededError

    out: dict[str, Any] = {"ok": 0, "refusals": []}
    with LLMManager(ConfigurationManager(path)) as manager:
        status = manager.get_status()["middleware"]
        out["start_budget"] = status["budget"]["budgets"]["global"]
        out["start_requests"] = status["cost"]["requests"]
        out["start_cost"] = status["cost"]["total_cost"]
        for _ in range(requests):
            try:
                manager.sync.chat("hello", max_tokens=max_tokens)
                out["ok"] += 1
            except BudgetExceededError as exc:
                out["refusals"].append({"message": str(exc), "spent": exc.spent, "reserved": exc.reserved,
                                        "limit": exc.limit, "requested": exc.requested})
        status = manager.get_status()["middleware"]
        out["end_budget"] = status["budget"]["budgets"]["global"]
        out["end_cost"] = status["cost"]["total_cost"]
        out["end_requests"] = status["cost"]["requests"]
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
