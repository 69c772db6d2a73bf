"""The SQLite usage ledger is written behind: buffered on the request path, written in batches, never lost on a
clean shutdown (close, manager cleanup or plain interpreter exit)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from spoon_llm.state.sqlite import SQLiteStore
from spoon_llm.testing import ProviderSimulator, Reply, Usage

from ._spend_worker import spend

PRICING = {"budget-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}}


def ledger_rows(path: Path) -> list[dict[str, object]]:
    """What another process sees in the file: the ledger rows, oldest first."""
    conn = sqlite3.connect(path)
    try:
        return [json.loads(r[0]) for r in conn.execute("SELECT data FROM ledger ORDER BY id")]
    except sqlite3.OperationalError:  # nothing written yet: not even the tables
        return []
    finally:
        conn.close()


async def test_many_quick_records_are_all_written_by_close(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, flush_interval=0.05, flush_rows=256)
    for i in range(5000):
        assert store.append_nowait("usage", {"ts": float(i), "i": i}) is None  # nothing to await
    await store.close()
    rows = ledger_rows(path)
    assert [r["i"] for r in rows] == list(range(5000))  # all of them, in order
    assert store.flushed_records == 5000 and store.flushes < 5000 // 256 + 2  # in batches of 256 or more


async def test_buffered_records_reach_the_file_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path, flush_interval=0.05)
    try:
        for i in range(10):
            store.append_nowait("usage", {"ts": float(i), "i": i})
        assert store.status()["ledger_buffered"] == 10
        for _ in range(100):  # the flusher writes them without being asked
            await asyncio.sleep(0.02)
            if len(ledger_rows(path)) == 10:
                break
        assert [r["i"] for r in ledger_rows(path)] == list(range(10))
        assert store.status()["ledger_buffered"] == 0
    finally:
        await store.close()


async def test_reads_and_durable_appends_see_buffered_records_first(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db", flush_interval=60)
    try:
        store.append_nowait("usage", {"ts": 1.0, "i": 1})
        await store.append("usage", {"ts": 2.0, "i": 2})  # written on return, after what was buffered
        store.append_nowait("usage", {"ts": 3.0, "i": 3})
        assert [r["i"] for r in await store.records("usage")] == [1, 2, 3]
    finally:
        await store.close()


async def test_closed_store_refuses_records(tmp_path: Path) -> None:
    from spoon_llm.state import StoreUnavailableError

    store = SQLiteStore(tmp_path / "ledger.db")
    await store.close()
    with pytest.raises(StoreUnavailableError):
        store.append_nowait("usage", {"ts": 1.0})


def _run_child(code: str, child_env: dict[str, str]) -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=child_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_interpreter_exit_without_close_loses_nothing(tmp_path: Path, child_env: dict[str, str]) -> None:
    path = tmp_path / "ledger.db"
    # The interval and batch size are never reached: only the exit hook can write these records.
    _run_child(f"""
        import asyncio
        from spoon_llm.state.sqlite import SQLiteStore

        async def main():
            store = SQLiteStore({str(path)!r}, flush_interval=3600, flush_rows=10**9)
            for i in range(2000):
                store.append_nowait("usage", {{"ts": float(i), "i": i}})

        asyncio.run(main())  # returns without closing the store
    """, child_env)
    assert [r["i"] for r in ledger_rows(path)] == list(range(2000))


async def test_a_killed_process_loses_at_most_the_last_interval(tmp_path: Path, child_env: dict[str, str]) -> None:
    path = tmp_path / "ledger.db"
    code = f"""
        import sys, time
        from spoon_llm.state.sqlite import SQLiteStore

        store = SQLiteStore({str(path)!r}, flush_interval=0.05)
        for i in range(500):
            store.append_nowait("usage", {{"ts": float(i), "i": i}})
        time.sleep(0.5)  # ten intervals: the flusher has written these
        for i in range(500, 600):
            store.append_nowait("usage", {{"ts": float(i), "i": i}})
        print("ready", flush=True)
        time.sleep(60)
    """
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", textwrap.dedent(code),
                                                   stdout=asyncio.subprocess.PIPE, env=child_env)
    assert process.stdout is not None
    assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"ready"
    process.send_signal(signal.SIGKILL)
    await process.wait()
    written = [r["i"] for r in ledger_rows(path)]
    assert written[:500] == list(range(500))  # at most the records of the last interval are missing
    assert written == list(range(len(written)))


async def test_every_request_is_in_the_ledger_after_the_manager_shuts_down(
        sim: ProviderSimulator, _state_path: Path, child_env: dict[str, str]) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=1, output_tokens=100)))
    path = _state_path  # a budget and no [state] section: the ledger is SQLite, at $SPOON_LLM_STATE_PATH
    data = {"providers": {"openai": {"api_key": "sk-test-ledger-xxxxxxxxxxxxx", "base_url": sim.openai_base_url,
                                     "model": "budget-model"}},
            "pricing": PRICING, "budget": {"limit": 100.0}, "retry": {"max_retries": 0}}
    assert (await spend(data, 400, child_env, concurrency=50))["ok"] == 400
    rows = ledger_rows(path)
    assert len(rows) == 400 and len({r["request_id"] for r in rows}) == 400
    assert sum(r["cost"] for r in rows) == pytest.approx(400 * 0.01)  # type: ignore[misc]
