"""Fixtures for the Gemini provider tests: one simulator per module, a provider factory that cleans up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from spoon_llm.providers.gemini import GeminiProvider
from spoon_llm.testing import ProviderSimulator

ProviderFactory = Callable[..., Awaitable[GeminiProvider]]


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def sim(module_simulator: ProviderSimulator) -> Iterator[ProviderSimulator]:
    module_simulator.reset()
    yield module_simulator
    module_simulator.reset()


@pytest.fixture
async def make_provider(sim: ProviderSimulator) -> AsyncIterator[ProviderFactory]:
    """Build initialised providers pointed at the simulator; every one is closed after the test."""
    made: list[GeminiProvider] = []

    async def factory(**config: Any) -> GeminiProvider:
        provider = GeminiProvider()
        settings = {"api_key": "AIzaSyTEST00000000000000000", "base_url": sim.gemini_base_url,
                    "model": "gemini-2.5-flash", **config}
        await provider.initialize(settings)
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        await provider.cleanup()
