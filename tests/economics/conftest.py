from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support.managers import ManagerFactory, simulator_sections

from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

KEYS = {name: f"sk-test-{name}-{'x' * 16}{i:04d}" for i, name in enumerate(
    ["primary", "backup", "k1", "k2", "local", "anthropic", "gemini"])}


@pytest.fixture(autouse=True)
def _state_path(state_path: Path) -> Path:
    """Every SQLite store a test opens by default lands in its own temporary directory."""
    return state_path


@pytest.fixture
def keys() -> dict[str, str]:
    return KEYS


@pytest.fixture
def make_manager(sim: ProviderSimulator, managers: ManagerFactory) -> Callable[..., LLMManager]:
    """Build a manager whose providers all point at the simulator (real openai SDK, real sockets); closed after
    the test."""

    def build(providers: dict[str, dict[str, Any]], middleware: Any = (), **settings: Any) -> LLMManager:
        data = {"providers": simulator_sections(sim, providers, KEYS),
                "retry": {"initial_backoff": 0.01, "max_backoff": 0.05, "max_retries": 0}, **settings}
        return managers.build(data, middleware=list(middleware), default_middleware=False)

    return build


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for helper subprocesses: no real keys, nothing but loopback to talk to."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
