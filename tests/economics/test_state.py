"""The three state stores behave the same: counters, reservations, windows, buckets, cool-downs, ledger."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoon_llm.state import MemoryStore, StateStore, StoreUnavailableError, from_nano, open_store, to_nano
from spoon_llm.state.redis import RedisStore
from spoon_llm.state.sqlite import SQLiteStore, default_state_path


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        built: StateStore = SQLiteStore(tmp_path / "s.db")
    else:
        url = request.getfixturevalue("redis_server")
        built = RedisStore(url, prefix=request.getfixturevalue("redis_prefix"))
    try:
        yield built
    finally:
        await built.close()


async def test_counters_and_atomic_reserve(store: StateStore) -> None:
    assert await store.get("c") == 0
    assert await store.add({"c": 5, "d": 2}) == [5, 2]
    assert await store.reserve("c", 4, 10, also={"n": 1}) == (True, 9)
    assert await store.reserve("c", 2, 10) == (False, 9)
    assert await store.get_many(["c", "d", "n", "missing"]) == [9, 2, 1, 0]


async def test_concurrent_reservations_never_overshoot(store: StateStore) -> None:
    results = await asyncio.gather(*(store.reserve("budget", 3, 100) for _ in range(60)))
    assert sum(ok for ok, _ in results) == 33  # 33 * 3 = 99 fits, a 34th would not
    assert await store.get("budget") == 99


async def test_sliding_window_admits_exactly_the_limit_then_says_when(store: StateStore) -> None:
    admitted = [await store.window_acquire("w", f"e{i}", 1, 5, 0.5) for i in range(7)]
    assert [ok for ok, _ in admitted] == [True] * 5 + [False] * 2
    assert 0 < admitted[-1][1] <= 0.5
    await asyncio.sleep(0.55)
    assert (await store.window_acquire("w", "later", 1, 5, 0.5))[0]


async def test_window_settle_frees_reserved_tokens(store: StateStore) -> None:
    assert (await store.window_acquire("t", "a", 800, 1000, 60))[0]
    assert not (await store.window_acquire("t", "b", 300, 1000, 60))[0]
    await store.window_adjust("t", "a", -600)  # the call used 200, not 800
    assert (await store.window_acquire("t", "b", 300, 1000, 60))[0]
    await store.window_adjust("t", "gone", 5)  # unknown entries are ignored


async def test_oversized_amount_only_enters_an_empty_window(store: StateStore) -> None:
    assert (await store.window_acquire("big", "a", 5000, 1000, 60))[0]
    assert not (await store.window_acquire("big", "b", 5000, 1000, 60))[0]


async def test_gcra_bucket_allows_burst_then_paces(store: StateStore) -> None:
    # One unit per 1,000 s: however slowly the machine runs these calls, no unit comes back in between (Redis keeps
    # time itself; the clocked twin below checks the exact figures on the stores whose clock can be set).
    rate = 0.001
    results = [await store.bucket_acquire("b", 1, rate, 3) for _ in range(5)]
    assert [ok for ok, _ in results] == [True, True, True, False, False]
    assert 900 < results[3][1] <= 1000  # one interval, less the time these calls took
    await store.bucket_adjust("b", -2, rate)  # two refunded
    assert (await store.bucket_acquire("b", 1, rate, 3))[0]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_gcra_bucket_paces_by_the_store_clock(backend: str, tmp_path: Path) -> None:
    now = [1000.0]
    built: StateStore = (MemoryStore(clock=lambda: now[0]) if backend == "memory"
                         else SQLiteStore(tmp_path / "s.db", clock=lambda: now[0]))
    try:
        results = [await built.bucket_acquire("b", 1, 10.0, 3) for _ in range(5)]
        assert results == [(True, 0.0)] * 3 + [(False, pytest.approx(0.1))] * 2
        now[0] += 0.1  # one interval later: one more unit, and only one
        assert await built.bucket_acquire("b", 1, 10.0, 3) == (True, 0.0)
        assert not (await built.bucket_acquire("b", 1, 10.0, 3))[0]
        await built.bucket_adjust("b", -2, 10.0)  # two refunded
        assert (await built.bucket_acquire("b", 1, 10.0, 3))[0]
        assert (await built.bucket_acquire("b", 1, 10.0, 3))[0]
        assert not (await built.bucket_acquire("b", 1, 10.0, 3))[0]
    finally:
        await built.close()


async def test_cooldown_never_shortens(store: StateStore) -> None:
    assert await store.cooldown_remaining("k") == 0
    await store.cooldown_set("k", 5)
    await store.cooldown_set("k", 1)
    assert 4 < await store.cooldown_remaining("k") <= 5


async def test_ledger_appends_in_order(store: StateStore) -> None:
    await store.append("usage", {"ts": 1.0, "cost": 0.5})
    await store.append("usage", {"ts": 2.0, "cost": 0.25})
    assert [r["cost"] for r in await store.records("usage")] == [0.5, 0.25]
    assert [r["ts"] for r in await store.records("usage", since=1.5)] == [2.0]


def test_money_is_counted_in_exact_integers() -> None:
    assert to_nano(0.1) + to_nano(0.2) == to_nano(0.3)
    assert to_nano(1e-10, round_up=True) == 1
    assert from_nano(to_nano(12.345678901)) == pytest.approx(12.345678901)


async def test_sqlite_runs_off_the_loop_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SQLiteStore(path)
    try:
        await store.add({"x": 1})
        names = await asyncio.get_running_loop().run_in_executor(
            store._executor, lambda: threading.current_thread().name)  # noqa: SLF001 - proving the design
        assert names.startswith("spoon-llm-sqlite")
        assert names != threading.current_thread().name
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_default_state_path_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_path({"SPOON_LLM_STATE_PATH": "/x/y.db"}) == Path("/x/y.db")
    assert default_state_path({"XDG_DATA_HOME": "/data"}) == Path("/data/spoon_llm/usage.db")
    assert str(default_state_path({})).endswith(".local/share/spoon_llm/usage.db")


async def test_open_store_reads_environment(tmp_path: Path) -> None:
    store = open_store("sqlite", env={"SPOON_LLM_STATE_PATH": str(tmp_path / "env.db")})
    try:
        assert isinstance(store, SQLiteStore) and store.path == str(tmp_path / "env.db")
    finally:
        await store.close()
    with pytest.raises(ValueError, match="unknown state backend"):
        open_store("mongo")


async def test_unreachable_redis_raises_store_unavailable() -> None:
    with socket_closed_port() as port:
        store = RedisStore(f"redis://:secret@127.0.0.1:{port}/0", timeout=0.2)
        try:
            with pytest.raises(StoreUnavailableError) as info:
                await store.reserve("x", 1, 10)
            assert "secret" not in str(info.value)
            assert store.status()["failures"] == 1
        finally:
            await store.close()


class socket_closed_port:  # noqa: N801 - used as a context manager
    """A loopback port with nothing listening."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None
