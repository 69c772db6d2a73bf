"""Fixtures for the virtual-key tests: a real redis-server on loopback, key stores of both kinds, a secret."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoon_llm.server.keys import KeyStore, RedisKeyStore, SQLiteKeyStore

SECRET = b"test-server-secret-0123456789"


@pytest.fixture(scope="session")
def redis_url(redis_server: str) -> str:
    """The session's redis-server (see ``tests/conftest.py``)."""
    return redis_server


@pytest.fixture
def secret() -> bytes:
    return SECRET


@pytest.fixture(autouse=True)
def _state_path(state_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default SQLite stores of a test (and of the CLI it starts) land in its own directory; no server keys."""
    monkeypatch.delenv("SPOON_LLM_MASTER_KEY", raising=False)
    monkeypatch.delenv("SPOON_LLM_SERVER_SECRET", raising=False)
    return state_path


@pytest.fixture(params=["sqlite", "redis"])
async def key_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    """The key store of each kind."""
    store: KeyStore
    if request.param == "sqlite":
        store = SQLiteKeyStore(tmp_path / "keys.db")
    else:
        store = RedisKeyStore(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for helper subprocesses: no real provider keys."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
