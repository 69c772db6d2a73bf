"""A gateway replica stand-in for the multi-process tests, sharing keys and limits through Redis.

``auth URL PREFIX SECRET KEY``: authenticates KEY every few milliseconds; prints ``ready`` after the first success,
then, once refused and 0.3 s later (or after 20 s), one JSON line: ``[[wall time the attempt began, outcome], ...]``.

``guard URL PREFIX RECORD_JSON ATTEMPTS ESTIMATE``: admits ATTEMPTS requests at once for the key RECORD_JSON,
holds what was admitted, prints the outcomes as JSON, waits for a line on stdin, then releases every admission
with ESTIMATE as its cost.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


async def auth(url: str, prefix: str, secret: str, key: str) -> None:
    from spoon_llm.server.auth import Authenticator, GatewayAuthError
    from spoon_llm.server.keys import RedisKeyStore

    store = RedisKeyStore(url, prefix=prefix)
    authenticator = Authenticator(master_key=None, store=store, secret=secret.encode())
    outcomes: list[tuple[float, str]] = []
    refused_at: float | None = None
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and (refused_at is None or time.monotonic() - refused_at < 0.3):
        began = time.time()
        try:
            await authenticator.authenticate({"authorization": f"Bearer {key}"}, "127.0.0.1")
            outcome = "ok"
        except GatewayAuthError as exc:
            outcome = exc.code
            if refused_at is None:
                refused_at = time.monotonic()
        if not outcomes:
            print("ready", flush=True)
        outcomes.append((began, outcome))
        await asyncio.sleep(0.005)
    await store.close()
    print(json.dumps(outcomes), flush=True)


async def guard(url: str, prefix: str, record: str, attempts: int, estimate: float) -> None:
    from spoon_llm.server.auth import GatewayAuthError, Principal
    from spoon_llm.server.guard import KeyGuard
    from spoon_llm.server.keys import VirtualKey
    from spoon_llm.state.redis import RedisStore

    key = VirtualKey.from_dict(json.loads(record))
    who = Principal(alias=key.alias, role=key.role, models=None, tags={}, key_id=key.id, key=key)
    store = RedisStore(url, prefix=prefix)
    keyguard = KeyGuard(store)
    counts: dict[str, Any] = {"ok": 0}

    async def one() -> Any:
        try:
            admission = await keyguard.admit(who, "m", estimate_usd=estimate, input_tokens=10)
        except GatewayAuthError as exc:
            counts[exc.code] = counts.get(exc.code, 0) + 1
            return None
        counts["ok"] += 1
        return admission

    admitted = [a for a in await asyncio.gather(*(one() for _ in range(attempts))) if a is not None]
    print(json.dumps(counts), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for admission in admitted:
        await admission.release(estimate, 10)
    await store.close()
    print("released", flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "auth":
        asyncio.run(auth(*args))
    else:
        asyncio.run(guard(args[0], args[1], args[2], int(args[3]), float(args[4])))
