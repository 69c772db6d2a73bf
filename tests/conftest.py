"""Test-wide isolation (no real keys from the environment, a fresh registry per test, no traffic off loopback) and
the fixtures several folders share: the provider simulator, managers closed after the test, a real redis-server."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _support.managers import ManagerFactory
from _support.redis_server import RedisServer, redis_binary

from spoon_llm.registry import reset_global_registry
from spoon_llm.testing import ProviderSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_DIR = Path(os.environ.get("SPOON_LLM_CONFORMANCE_DIR") or REPO_ROOT.parent / "shared" / "conformance")

_CONFIG_ENV_SUFFIXES = ("_API_KEY", "_BASE_URL", "_MODEL", "_MAX_TOKENS", "_TEMPERATURE", "_TIMEOUT")
_CONFIG_ENV_NAMES = (
    "SPOON_LLM_CONFIG", "DEFAULT_LLM_PROVIDER", "LLM_PROVIDER", "LLM_FALLBACK_CHAIN", "BUDGET_LIMIT",
    "VLLM_ENDPOINT", "VLLM_HOURLY_RATE", "OPENROUTER_HTTP_REFERER", "OPENROUTER_X_TITLE", "SPOON_LLM_PLUGINS",
    "SPOON_LLM_BLOCK_PLUGINS", "LLM_REQUEST_TIMEOUT",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Strip real API keys and spoon-llm settings; run in an empty directory so no stray config file is read."""
    for name in list(os.environ):
        if name.endswith(_CONFIG_ENV_SUFFIXES) or name in _CONFIG_ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    reset_global_registry()
    yield
    reset_global_registry()


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address: object) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if not (host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0")):
            raise RuntimeError(f"test tried to reach {host!r}: tests may only talk to 127.0.0.1")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection to an address that is not loopback."""

    def connect(self: socket.socket, address: object) -> None:
        _loopback_only(address)
        _real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        _loopback_only(address)
        return _real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def conformance_root() -> Path:
    """The shared conformance corpus; tests using it skip with a clear message where it is absent."""
    if not CONFORMANCE_DIR.is_dir():
        pytest.skip(f"conformance corpus not found at {CONFORMANCE_DIR} (set SPOON_LLM_CONFORMANCE_DIR)")
    return CONFORMANCE_DIR


@pytest.fixture
def state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default SQLite stores of a test (and of any CLI it starts) in its own directory, and no Redis URL.

    Folders whose tests open default stores use it autouse (``_state_path`` in their conftest).
    """
    path = tmp_path / "state" / "usage.db"
    monkeypatch.setenv("SPOON_LLM_STATE_PATH", str(path))
    monkeypatch.delenv("SPOON_LLM_REDIS_URL", raising=False)
    return path


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    """The provider simulator on 127.0.0.1, in this test's event loop (folders may override it)."""
    async with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
async def managers(sim: ProviderSimulator) -> AsyncIterator[ManagerFactory]:
    """Builds managers and closes each after the test, before the simulator stops."""
    factory = ManagerFactory()
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real redis-server on a free loopback port for the whole session (skips when not installed)."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of its own for each test, so tests sharing the server never see each other's state."""
    return f"t{uuid.uuid4().hex[:10]}"
