"""Runs every ```python block of README.md in order, in one namespace, as a reader pasting them would.

Usage: python -W error _readme_runner.py README.md

Blocks with a top-level ``await`` / ``async with`` run in their own ``asyncio.run``; ``async def test_*``
functions a block defines are run too. Prints ``block N ok`` after each block; any exception fails the process.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import inspect
import re
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    readme = Path(sys.argv[1]).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    namespace: dict[str, Any] = {"__name__": "readme"}
    ran: set[str] = set()
    for index, source in enumerate(blocks):
        line = readme[: readme.index(source)].count("\n") + 1
        code = compile(source, f"README.md:{line} (python block {index})", "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))  # noqa: S307 - the README's own code, run on purpose
        else:
            exec(code, namespace)  # noqa: S102
        for name, value in list(namespace.items()):
            if name.startswith("test_") and inspect.iscoroutinefunction(value) and name not in ran:
                ran.add(name)
                asyncio.run(value())
        print(f"block {index} ok", flush=True)
    namespace.clear()
    gc.collect()  # anything left unclosed warns now, while warnings are errors
    print(f"{len(blocks)} blocks ok", flush=True)


if __name__ == "__main__":
    main()
