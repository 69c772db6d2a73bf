"""Two processes sharing one redis-server: a key revoked through one is refused by the other within 1 s, and
per-key limits (rpm, requests at once, budget) hold exactly across both."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from spoon_llm.costs import BudgetManager
from spoon_llm.costs.budgets import Budget
from spoon_llm.server.keys import RedisKeyStore, new_key
from spoon_llm.state.redis import RedisStore

WORKER = str(Path(__file__).with_name("_keys_worker.py"))
SECRET = "replica-secret-0123456789"


async def start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, WORKER, *args, env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)


async def line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    text = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert text, f"the worker exited with {await process.wait()}"
    return text.decode().strip()


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_1s(
        redis_url: str, redis_prefix: str, child_env: dict[str, str]) -> None:
    store = RedisKeyStore(redis_url, prefix=redis_prefix)
    try:
        record, plain = new_key("alice", SECRET.encode())
        await store.create(record)
        worker = await start("auth", redis_url, redis_prefix, SECRET, plain, env=child_env)
        assert await line(worker) == "ready"
        await asyncio.sleep(0.3)  # the other replica serves the key from its cache meanwhile
        await store.revoke("alice")
        revoked_at = time.time()
        outcomes = json.loads(await line(worker))
        assert await worker.wait() == 0
    finally:
        await store.close()
    assert any(o == "ok" for _, o in outcomes)
    refusals = [began for began, o in outcomes if o != "ok"]
    assert refusals and [o for _, o in outcomes if o != "ok"][0] == "key_revoked"
    # Presenting the revoked key over and over counts as failed attempts: the address is throttled after 20.
    assert {o for _, o in outcomes if o != "ok"} <= {"key_revoked", "too_many_failures"}
    # However busy the machine, no attempt that began more than 1 s after the revocation was admitted.
    late_admissions = [began - revoked_at for began, o in outcomes if o == "ok" and began > revoked_at + 1.0]
    assert late_admissions == []
    # And once refused, refused for good.
    first_refusal = min(refusals)
    assert all(o != "ok" for began, o in outcomes if began >= first_refusal)


async def run_guards(redis_url: str, prefix: str, record: str, attempts: int, estimate: float,
                     env: dict[str, str]) -> list[dict[str, int]]:
    workers = [await start("guard", redis_url, prefix, record, str(attempts), str(estimate), env=env)
               for _ in range(2)]
    counts = [json.loads(await line(w)) for w in workers]  # both have attempted, holding what they got
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    for worker in workers:
        assert await line(worker) == "released"
        assert await worker.wait() == 0
    return counts


async def test_rpm_is_exact_across_two_processes(redis_url: str, redis_prefix: str,
                                                 child_env: dict[str, str]) -> None:
    record, _ = new_key("alice", SECRET.encode(), rpm=30)
    counts = await run_guards(redis_url, redis_prefix, json.dumps(record.to_dict()), 40, 0.0, child_env)
    assert sum(c["ok"] for c in counts) == 30
    assert sum(c.get("rate_limited", 0) for c in counts) == 50


async def test_requests_at_once_are_exact_across_two_processes(redis_url: str, redis_prefix: str,
                                                               child_env: dict[str, str]) -> None:
    record, _ = new_key("alice", SECRET.encode(), max_concurrent=7)
    counts = await run_guards(redis_url, redis_prefix, json.dumps(record.to_dict()), 25, 0.0, child_env)
    assert sum(c["ok"] for c in counts) == 7
    assert sum(c.get("too_many_concurrent", 0) for c in counts) == 43
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        assert await store.get(f"gw:inflight:{record.id}") == 0  # every hold given back
    finally:
        await store.close()


async def test_a_key_budget_is_exact_across_two_processes(redis_url: str, redis_prefix: str,
                                                          child_env: dict[str, str]) -> None:
    record, _ = new_key("alice", SECRET.encode(), budget_limit=1.0)
    counts = await run_guards(redis_url, redis_prefix, json.dumps(record.to_dict()), 20, 0.1, child_env)
    assert sum(c["ok"] for c in counts) == 10
    assert sum(c.get("budget_exceeded", 0) for c in counts) == 30
    store = RedisStore(redis_url, prefix=redis_prefix)
    try:
        budgets = BudgetManager(store, [Budget(name=f"key:{record.id}", limit=1.0, scope="provider",
                                               match=f"vkey:{record.id}")])
        snapshot = (await budgets.snapshot())[f"key:{record.id}"]
    finally:
        await store.close()
    assert snapshot["spent"] == 1.0 and snapshot["reserved"] == 0
