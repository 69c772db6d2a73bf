from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _support.managers import ManagerFactory

from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

#: One section per vendor under test, pointed at the simulator.
VENDOR_SECTIONS: dict[str, dict[str, Any]] = {
    "openai": {"type": "openai", "api_key": "sk-test-openai-xxxxxxxxxxxxxxxx0001", "model": "gpt-4o-mini"},
    "anthropic": {"type": "anthropic", "api_key": "sk-ant-test-xxxxxxxxxxxxxxxx0002",
                  "model": "claude-sonnet-4-5"},
    "gemini": {"type": "gemini", "api_key": "AIzaSyTEST00000000000000000", "model": "gemini-2.5-flash"},
}


def base_url(sim: ProviderSimulator, vendor: str) -> str:
    return {"openai": sim.openai_base_url, "anthropic": sim.anthropic_base_url,
            "gemini": sim.gemini_base_url}[vendor]


@pytest.fixture
def make_manager(sim: ProviderSimulator, managers: ManagerFactory) -> Callable[..., LLMManager]:
    """A manager with the named vendors' sections (native transport, real sockets); closed after the test."""

    def build(*vendors: str, **settings: Any) -> LLMManager:
        sections = {v: {**VENDOR_SECTIONS[v], "base_url": base_url(sim, v)} for v in vendors}
        data = {"providers": sections, "default_provider": vendors[0],
                "retry": {"initial_backoff": 0.01, "max_backoff": 0.02, "max_retries": 0}, **settings}
        return managers.build(data)

    return build
