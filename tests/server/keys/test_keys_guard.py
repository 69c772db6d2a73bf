"""KeyGuard: model allow-list, rpm/tpm, requests at once and budget per key, on the memory, SQLite and Redis
stores; every hold released exactly once on success, error, refusal by a later check and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spoon_llm.server.auth import GatewayAuthError, Principal
from spoon_llm.server.guard import KeyGuard
from spoon_llm.server.keys import VirtualKey, new_key
from spoon_llm.state import MemoryStore, StateStore
from spoon_llm.state.redis import RedisStore
from spoon_llm.state.sqlite import SQLiteStore
from spoon_llm.types import TokenUsage

SECRET = b"guard-secret"


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    state: StateStore
    if request.param == "memory":
        state = MemoryStore()
    elif request.param == "sqlite":
        state = SQLiteStore(tmp_path / "state.db")
    else:
        state = RedisStore(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"))
    try:
        yield state
    finally:
        await state.close()


def principal(**fields: Any) -> Principal:
    record, _ = new_key(fields.pop("alias", "alice"), SECRET, **fields)
    return as_principal(record)


def as_principal(record: VirtualKey) -> Principal:
    return Principal(alias=record.alias, role=record.role,
                     models=frozenset(record.models) if record.models is not None else None,
                     tags=dict(record.metadata), key_id=record.id, key=record)


async def refusal(guard: KeyGuard, who: Principal, model: str = "gpt-4o", **kw: Any) -> GatewayAuthError:
    with pytest.raises(GatewayAuthError) as caught:
        await guard.admit(who, model, **kw)
    return caught.value


async def inflight(store: StateStore, who: Principal) -> int:
    return await store.get(f"gw:inflight:{who.key_id}")


async def budget(guard: KeyGuard, who: Principal) -> dict[str, Any]:
    return (await guard.budgets.snapshot())[f"key:{who.key_id}"]


async def test_model_allow_list(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(models=["gpt-4o", "claude-*"], max_concurrent=1)
    error = await refusal(guard, who, "o3")
    assert (error.status, error.code) == (403, "model_not_allowed")
    assert "'alice' may not use model 'o3'" in str(error)
    async with await guard.admit(who, "claude-haiku"):
        pass
    assert await inflight(store, who) == 0


async def test_the_master_key_holds_nothing() -> None:
    from spoon_llm.server.auth import MASTER

    guard = KeyGuard(MemoryStore())
    admissions = [await guard.admit(MASTER, "anything") for _ in range(1000)]
    for admission in admissions:
        await admission.release(1.0, 10)


async def test_rpm(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(rpm=3)
    for _ in range(3):
        await (await guard.admit(who, "gpt-4o")).release(0.0, 1)
    error = await refusal(guard, who)
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after is not None and 0 < error.retry_after <= 60.0
    assert "'alice' is over its rate limit (rpm 3)" in str(error)
    other = principal(alias="bob", rpm=3)  # limits are per key
    await (await guard.admit(other, "gpt-4o")).release()


async def test_tpm_reserves_then_settles_to_real_usage(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(tpm=100)
    first = await guard.admit(who, "gpt-4o", input_tokens=20, output_tokens=40)
    assert (await refusal(guard, who, input_tokens=20, output_tokens=40)).code == "rate_limited"
    await first.release(0.0, TokenUsage(input_tokens=5, output_tokens=5))  # 10 used, 50 given back
    second = await guard.admit(who, "gpt-4o", input_tokens=20, output_tokens=40)
    await second.release(0.0, 60)
    assert (await refusal(guard, who, input_tokens=20, output_tokens=20)).code == "rate_limited"  # 70 + 40


async def test_max_concurrent(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(max_concurrent=2)
    one, two = await guard.admit(who, "m"), await guard.admit(who, "m")
    error = await refusal(guard, who, "m")
    assert (error.status, error.code, error.retry_after) == (429, "too_many_concurrent", 1.0)
    assert await inflight(store, who) == 2
    await one.release()
    await one.release()  # a second release is a no-op, never a second decrement
    three = await guard.admit(who, "m")
    await two.release()
    await three.release()
    assert await inflight(store, who) == 0


async def test_budget_reserve_settle_and_refuse(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(budget_limit=1.0)
    held = [await guard.admit(who, "m", estimate_usd=0.3) for _ in range(3)]
    error = await refusal(guard, who, "m", estimate_usd=0.3)
    assert (error.status, error.code) == (402, "budget_exceeded")
    assert "'alice' has used its total budget of $1" in str(error)
    assert (await budget(guard, who))["reserved"] == pytest.approx(0.9)
    await held[0].release(0.1)
    await held[1].release(0.1)
    await held[2].release()  # failed: costs nothing
    await held[2].release(5.0)  # too late: already released
    snapshot = await budget(guard, who)
    assert snapshot["spent"] == pytest.approx(0.2) and snapshot["reserved"] == 0
    # An unpriced request reserves nothing but is refused once the budget is used up.
    await (await guard.admit(who, "m")).release(0.8)
    assert (await refusal(guard, who, "m")).code == "budget_exceeded"


async def test_a_refusal_by_a_later_check_gives_back_the_earlier_holds(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(max_concurrent=5, budget_limit=10.0, rpm=1)
    await (await guard.admit(who, "m", estimate_usd=1.0)).release(0.5)
    assert (await refusal(guard, who, "m", estimate_usd=1.0)).code == "rate_limited"
    assert await inflight(store, who) == 0
    snapshot = await budget(guard, who)
    assert snapshot["spent"] == pytest.approx(0.5) and snapshot["reserved"] == 0


async def test_released_on_error_and_on_cancellation(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(max_concurrent=3, budget_limit=5.0)
    with pytest.raises(RuntimeError):
        async with await guard.admit(who, "m", estimate_usd=1.0):
            raise RuntimeError("the upstream call failed")
    entered = asyncio.Event()

    async def request() -> None:
        async with await guard.admit(who, "m", estimate_usd=1.0):
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(request())
    await entered.wait()
    assert await inflight(store, who) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await inflight(store, who) == 0
    snapshot = await budget(guard, who)
    assert snapshot["reserved"] == 0 and snapshot["spent"] == 0


async def test_changed_limits_apply_to_the_next_request(store: StateStore) -> None:
    guard = KeyGuard(store)
    record, _ = new_key("alice", SECRET, budget_limit=1.0, max_concurrent=1)
    held = await guard.admit(as_principal(record), "m", estimate_usd=0.9)
    raised = record.replace(budget_limit=2.0, max_concurrent=2)
    second = await guard.admit(as_principal(raised), "m", estimate_usd=0.9)
    lowered = raised.replace(budget_limit=0.5, max_concurrent=3)
    assert (await refusal(guard, as_principal(lowered), "m")).code == "budget_exceeded"
    await held.release(0.0)
    await second.release(0.0)


@pytest.mark.parametrize("limits", [{"max_concurrent": 2, "budget_limit": 1.0, "rpm": 5}, {"budget_limit": 1.0},
                                    {"rpm": 5}, {"tpm": 100}])
@pytest.mark.parametrize("fail_mode", ["closed", "open"])
async def test_an_unreachable_store_follows_fail_mode(fail_mode: str, limits: dict[str, Any]) -> None:
    # Each limit alone too: an unreachable store is a 503, never mistaken for the key being over its limit.
    dead = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    guard = KeyGuard(dead, fail_mode=fail_mode)  # type: ignore[arg-type]
    who = principal(**limits)
    try:
        if fail_mode == "closed":
            error = await refusal(guard, who, "m", estimate_usd=0.1)
            assert (error.status, error.code) == (503, "state_store_unavailable")
        else:
            await (await guard.admit(who, "m", estimate_usd=0.1)).release(0.1, 5)
    finally:
        await dead.close()


async def test_build_guard_follows_the_state_section(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    from spoon_llm.config import ConfigurationManager
    from spoon_llm.server.guard import build_guard
    from spoon_llm.server.keys import SQLiteKeyStore

    keys = SQLiteKeyStore(tmp_path / "keys.db")
    default = ConfigurationManager({}, env={}).config
    assert build_guard(default, None) is None  # no key store: only the master key, nothing to count
    who = principal(budget_limit=1.0, rpm=100)
    # Default [state]: limits in memory (per process), spend in the SQLite state file, so it survives a restart.
    for spent in (0.25, 0.5):
        guard = build_guard(default, keys)
        assert guard is not None and guard.store.name == "memory" and guard.budgets.store.name == "sqlite"
        try:
            await (await guard.admit(who, "m", estimate_usd=0.3)).release(0.25)
            assert (await budget(guard, who))["spent"] == pytest.approx(spent)
        finally:
            await guard.close()
    shared = ConfigurationManager({"state": {"backend": "redis", "url": redis_url, "key_prefix": redis_prefix}},
                                  env={}).config
    guard = build_guard(shared, keys)
    assert guard is not None and guard.store is guard.budgets.store and guard.store.name == "redis"
    await guard.close()
    await keys.close()


async def test_callers_cancelled_while_being_admitted_leave_nothing_held(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(max_concurrent=50, budget_limit=100.0, tpm=100_000)
    tasks = [asyncio.create_task(guard.admit(who, "m", estimate_usd=1.0, input_tokens=10)) for _ in range(40)]
    for index, task in enumerate(tasks):  # cancelled at every stage of admission, some after it completed
        for _ in range(index % 7):
            await asyncio.sleep(0)
        task.cancel()
    for task in tasks:
        try:
            await (await task).release()
        except asyncio.CancelledError:
            pass
    for _ in range(500):  # orphaned admissions are released in the background: wait for it (bounded)
        if await inflight(store, who) == 0 and (await budget(guard, who))["reserved"] == 0:
            break
        await asyncio.sleep(0.01)
    assert await inflight(store, who) == 0
    assert (await budget(guard, who))["reserved"] == 0


async def test_tpm_without_estimates_counts_what_was_used(store: StateStore) -> None:
    guard = KeyGuard(store)
    who = principal(tpm=100)
    await (await guard.admit(who, "m")).release(0.0, 80)
    await (await guard.admit(who, "m")).release(0.0, TokenUsage(input_tokens=10, output_tokens=20))
    error = await refusal(guard, who, "m")  # 110 tokens used this minute
    assert (error.status, error.code) == (429, "rate_limited") and "tpm 100" in str(error)
