from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

KEYS = {name: f"sk-test-{name}-{'x' * 16}{i:04d}" for i, name in enumerate(
    ["primary", "backup", "third", "k1", "k2", "k3", "fast", "slow", "big"])}


@pytest.fixture
def keys() -> dict[str, str]:
    """The fake API keys of the test deployments, by deployment name."""
    return KEYS


@pytest.fixture
def key_suffix() -> Callable[[str], str]:
    """What the simulator keeps of a key in its records: the last four characters."""
    return lambda name: "***" + KEYS[name][-4:]


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture(params=["native", "sdk"])
def transport(request: pytest.FixtureRequest) -> str:
    """The transport every provider section of ``make_manager`` uses: each manager test runs on both."""
    return str(request.param)


@pytest.fixture
async def make_manager(sim: ProviderSimulator, transport: str) -> AsyncIterator[Callable[..., LLMManager]]:
    """Build a manager whose providers all point at the simulator (native client or real openai SDK, real sockets)."""
    managers: list[LLMManager] = []

    def build(providers: dict[str, dict[str, Any]], **settings: Any) -> LLMManager:
        manager_kwargs = settings.pop("manager_kwargs", {})
        sections = {}
        for name, section in providers.items():
            section = dict(section)
            section.setdefault("type", "openai")
            section.setdefault("base_url", sim.openai_base_url)
            section.setdefault("transport", transport)
            if "api_keys" not in section:
                section.setdefault("api_key", KEYS.get(name, KEYS["primary"]))
            sections[name] = section
        data = {"providers": sections, "retry": {"initial_backoff": 0.01, "max_backoff": 0.05}, **settings}
        manager = LLMManager(ConfigurationManager(data, env={}), **manager_kwargs)
        managers.append(manager)
        return manager

    yield build
    for manager in managers:  # before the simulator stops; a test's own cleanup makes this a no-op
        await manager.cleanup()
