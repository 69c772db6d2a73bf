"""Fixtures for the virtual-key tests: a real redis-server on loopback, key stores of both kinds, a secret."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from spoon_llm.server.keys import KeyStore, RedisKeyStore, SQLiteKeyStore

SECRET = b"test-server-secret-0123456789"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the session (skips when the binary is absent)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis-keys")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix per test, so tests sharing the server never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def secret() -> bytes:
    return SECRET


@pytest.fixture(autouse=True)
def _state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default SQLite stores of a test (and of the CLI it starts) land in its own directory."""
    path = tmp_path / "state" / "usage.db"
    monkeypatch.setenv("SPOON_LLM_STATE_PATH", str(path))
    monkeypatch.delenv("SPOON_LLM_REDIS_URL", raising=False)
    monkeypatch.delenv("SPOON_LLM_MASTER_KEY", raising=False)
    monkeypatch.delenv("SPOON_LLM_SERVER_SECRET", raising=False)
    return path


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
