"""The synchronous store protocol: the memory store offers every ``*_now`` twin it declares, others none."""

from __future__ import annotations

import inspect
from pathlib import Path

from spoon_llm.state.base import StateStore, SyncStateStore, sync_store
from spoon_llm.state.memory import MemoryStore
from spoon_llm.state.sqlite import SQLiteStore


def _protocol_methods() -> list[str]:
    return [name for name, _ in inspect.getmembers(SyncStateStore, inspect.isfunction) if name.endswith("_now")]


def test_the_memory_store_implements_every_sync_twin_with_the_async_signature() -> None:
    store = MemoryStore()
    now = sync_store(store)
    assert now is store
    names = _protocol_methods()
    assert len(names) == 9
    for name in names:
        twin = getattr(store, name)
        declared = inspect.signature(getattr(SyncStateStore, name))
        assert list(inspect.signature(twin).parameters) == list(declared.parameters)[1:], name
        assert hasattr(StateStore, name.removesuffix("_now")), name  # each twin mirrors a protocol operation


def test_a_store_without_sync_operations_is_awaited(tmp_path: Path) -> None:
    assert sync_store(SQLiteStore(tmp_path / "state.db")) is None


async def test_sync_twins_share_state_with_the_async_operations() -> None:
    store = MemoryStore()
    now = sync_store(store)
    assert now is not None
    assert now.reserve_now("k", 5, 10) == (True, 5)
    assert await store.get("k") == 5
    assert now.add_now("k", -5) == 0
