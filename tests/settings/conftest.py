"""Fixtures of the settings tests: a provider simulator on 127.0.0.1 and a private state directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

KEY = "sk-settings-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _state_path(state_path: Path) -> Path:
    """Every SQLite store a test opens by default lands in its own temporary directory."""
    return state_path


