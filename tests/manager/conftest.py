from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _support.managers import ManagerFactory, simulator_sections

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


@pytest.fixture(params=["native", "sdk"])
def transport(request: pytest.FixtureRequest) -> str:
    """The transport every provider section of ``make_manager`` uses: each manager test runs on both."""
    return str(request.param)


@pytest.fixture
def make_manager(sim: ProviderSimulator, transport: str, managers: ManagerFactory) -> Callable[..., LLMManager]:
    """Build a manager whose providers all point at the simulator (native client or real openai SDK, real sockets);
    closed after the test."""

    def build(providers: dict[str, dict[str, Any]], **settings: Any) -> LLMManager:
        manager_kwargs = settings.pop("manager_kwargs", {})
        data = {"providers": simulator_sections(sim, providers, KEYS, transport=transport),
                "retry": {"initial_backoff": 0.01, "max_backoff": 0.05}, **settings}
        return managers.build(data, **manager_kwargs)

    return build
