from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.managers import ManagerFactory, simulator_sections

from spoon_llm.manager import LLMManager
from spoon_llm.monitoring import reset_monitoring
from spoon_llm.testing import ProviderSimulator

# Fake keys with no vendor shape: only the configuration's register_secret can know them.
KEYS = {name: f"fake-key-{name}-{'q' * 20}{i:04d}" for i, name in enumerate(["primary", "backup", "third"])}


@pytest.fixture(autouse=True)
def _fresh_monitoring() -> Iterator[None]:
    reset_monitoring()
    yield
    reset_monitoring()


@pytest.fixture
def keys() -> dict[str, str]:
    return KEYS


@pytest.fixture
def make_manager(sim: ProviderSimulator, managers: ManagerFactory) -> Callable[..., LLMManager]:
    """Managers whose providers point at the simulator (real openai SDK, real sockets); closed after the test."""

    def build(providers: dict[str, dict[str, Any]], **settings: Any) -> LLMManager:
        manager_kwargs = settings.pop("manager_kwargs", {})
        data = {"providers": simulator_sections(sim, providers, KEYS),
                "retry": {"initial_backoff": 0.001, "max_backoff": 0.005}, **settings}
        return managers.build(data, **manager_kwargs)

    return build
