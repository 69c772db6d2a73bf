from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

KEYS = {name: f"sk-test-{name}-{'x' * 16}{i:04d}" for i, name in enumerate(
    ["primary", "backup", "k1", "k2", "local", "anthropic", "gemini"])}


@pytest.fixture(autouse=True)
def _state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every SQLite store a test opens by default lands in its own temporary directory."""
    path = tmp_path / "state" / "usage.db"
    monkeypatch.setenv("SPOON_LLM_STATE_PATH", str(path))
    monkeypatch.delenv("SPOON_LLM_REDIS_URL", raising=False)
    return path


@pytest.fixture
def keys() -> dict[str, str]:
    return KEYS


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_manager(sim: ProviderSimulator) -> Iterator[Callable[..., LLMManager]]:
    """Build a manager whose providers all point at the simulator (real openai SDK, real sockets)."""

    def build(providers: dict[str, dict[str, Any]], middleware: Any = (), **settings: Any) -> LLMManager:
        sections = {}
        for name, section in providers.items():
            section = dict(section)
            section.setdefault("type", "openai")
            section.setdefault("base_url", sim.openai_base_url)
            if "api_keys" not in section:
                section.setdefault("api_key", KEYS.get(name, KEYS["primary"]))
            sections[name] = section
        data = {"providers": sections, "retry": {"initial_backoff": 0.01, "max_backoff": 0.05, "max_retries": 0},
                **settings}
        return LLMManager(ConfigurationManager(data, env={}), middleware=list(middleware),
                          default_middleware=False)

    yield build


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole session (skips when the binary is absent)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
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
    """A key prefix of its own for each test, so tests sharing the server never see each other's state."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for helper subprocesses: no real keys, nothing but loopback to talk to."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
