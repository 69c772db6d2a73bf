"""Fixtures for the Gemini provider tests: providers pointed at the simulator, on each transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spoon_llm.providers.gemini import GeminiProvider
from spoon_llm.testing import ProviderSimulator

ProviderFactory = Callable[..., Awaitable[GeminiProvider]]


@pytest.fixture
def make_provider(sim: ProviderSimulator, build_provider: Callable[..., Awaitable[Any]]) -> ProviderFactory:
    """Build initialised providers pointed at the simulator (on the ``transport`` fixture's transport)."""

    async def factory(**config: Any) -> GeminiProvider:
        settings = {"api_key": "AIzaSyTEST00000000000000000", "base_url": sim.gemini_base_url,
                    "model": "gemini-2.5-flash", **config}
        provider: GeminiProvider = await build_provider(GeminiProvider, **settings)
        return provider

    return factory
