"""Fixtures for the Anthropic provider tests: providers pointed at the simulator, on each transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spoon_llm.providers.anthropic import AnthropicProvider
from spoon_llm.testing import ProviderSimulator

ProviderFactory = Callable[..., Awaitable[AnthropicProvider]]


@pytest.fixture
def make_provider(sim: ProviderSimulator, build_provider: Callable[..., Awaitable[Any]]) -> ProviderFactory:
    """Build initialised providers pointed at the simulator (on the ``transport`` fixture's transport)."""

    async def factory(**config: Any) -> AnthropicProvider:
        settings = {"api_key": "sk-ant-test-0000000000", "base_url": sim.anthropic_base_url,
                    "model": "claude-sonnet-4-5", **config}
        provider: AnthropicProvider = await build_provider(AnthropicProvider, **settings)
        return provider

    return factory
