"""Fixtures for the OpenAI-compatible provider tests: one simulator per module, providers pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from spoon_llm.testing import ProviderSimulator


@pytest.fixture(scope="module")
def _module_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def sim(_module_sim: ProviderSimulator) -> Iterator[ProviderSimulator]:
    """A running simulator (shared by the module), reset before and after each test."""
    _module_sim.reset()
    yield _module_sim
    _module_sim.reset()


@pytest.fixture
async def openai_provider(sim: ProviderSimulator) -> AsyncIterator[object]:
    """An initialised ``OpenAIProvider`` talking to the simulator."""
    from _openai_compat_helpers import OPENAI_KEY

    from spoon_llm.providers.openai import OpenAIProvider

    provider = OpenAIProvider()
    await provider.initialize({"api_key": OPENAI_KEY, "base_url": sim.openai_base_url, "model": "gpt-4o-mini"})
    yield provider
    await provider.cleanup()
