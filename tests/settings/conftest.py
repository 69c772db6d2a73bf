"""Fixtures of the settings tests: a provider simulator on 127.0.0.1 and a private state directory per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoon_llm.testing import ProviderSimulator

KEY = "sk-settings-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every SQLite store opened by default lands in this test's own directory."""
    path = tmp_path / "state" / "usage.db"
    monkeypatch.setenv("SPOON_LLM_STATE_PATH", str(path))
    monkeypatch.delenv("SPOON_LLM_REDIS_URL", raising=False)
    return path


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator() as simulator:
        yield simulator
