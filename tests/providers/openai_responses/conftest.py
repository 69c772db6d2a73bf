"""Fixtures for the Responses API provider tests: providers pointed at the simulator, on each transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spoon_llm.providers.openai_responses import OpenAIResponsesProvider
from spoon_llm.testing import ProviderSimulator

ProviderFactory = Callable[..., Awaitable[OpenAIResponsesProvider]]
API_KEY = "sk-proj-responses-test-0000000000"


@pytest.fixture
def make_provider(sim: ProviderSimulator, build_provider: Callable[..., Awaitable[Any]]) -> ProviderFactory:
    """Build initialised providers pointed at the simulator (on the ``transport`` fixture's transport)."""

    async def factory(**config: Any) -> OpenAIResponsesProvider:
        settings = {"api_key": API_KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini", **config}
        provider: OpenAIResponsesProvider = await build_provider(OpenAIResponsesProvider, **settings)
        return provider

    return factory
