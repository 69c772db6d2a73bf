from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
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
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
async def make_manager(sim: ProviderSimulator) -> AsyncIterator[Callable[..., LLMManager]]:
    """Managers whose providers point at the simulator (real openai SDK, real sockets); closed after the test."""
    managers: list[LLMManager] = []

    def build(providers: dict[str, dict[str, Any]], **settings: Any) -> LLMManager:
        manager_kwargs = settings.pop("manager_kwargs", {})
        sections = {}
        for name, section in providers.items():
            section = dict(section)
            section.setdefault("type", "openai")
            section.setdefault("base_url", sim.openai_base_url)
            section.setdefault("api_key", KEYS.get(name, KEYS["primary"]))
            sections[name] = section
        data = {"providers": sections, "retry": {"initial_backoff": 0.001, "max_backoff": 0.005}, **settings}
        manager = LLMManager(ConfigurationManager(data, env={}), **manager_kwargs)
        managers.append(manager)
        return manager

    yield build
    for manager in managers:
        await manager.cleanup()
