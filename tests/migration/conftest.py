"""Fixtures for code written against the older ``spoon_ai.llm`` API (and the pooled module), import-renamed.

Every test talks to the provider simulator over real sockets on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.managers import ManagerFactory

from spoon_llm import LLMManager
from spoon_llm.monitoring import reset_monitoring
from spoon_llm.registry import reset_global_registry
from spoon_llm.testing import ProviderSimulator

# Fake keys with no vendor shape.
KEY = "legacy-test-key-" + "k" * 24
KEY2 = "legacy-test-key2-" + "m" * 24


@pytest.fixture(autouse=True)
def _fresh_globals() -> Iterator[None]:
    """Process-wide monitoring and the provider registry start empty (custom providers register into it)."""
    reset_monitoring()
    reset_global_registry()
    yield
    reset_monitoring()
    reset_global_registry()


@pytest.fixture
def thread_sim() -> Iterator[ProviderSimulator]:
    """A simulator on its own thread, for tests of the blocking API."""
    with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_manager(managers: ManagerFactory) -> Callable[..., LLMManager]:
    """Managers over ``{"providers": ...}`` (or any older layout given whole); closed after the test."""

    def build(data: dict[str, Any], **kwargs: Any) -> LLMManager:
        return managers.build(data, **kwargs)

    return build


def openai_section(sim: ProviderSimulator, **settings: Any) -> dict[str, Any]:
    """An ``openai`` provider section pointing at the simulator."""
    return {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4o-mini", **settings}
