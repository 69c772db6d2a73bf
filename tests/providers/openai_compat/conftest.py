"""Fixtures for the OpenAI-compatible provider tests: providers pointed at the simulator (``sim``: ../conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spoon_llm.testing import ProviderSimulator


@pytest.fixture
async def openai_provider(sim: ProviderSimulator) -> AsyncIterator[object]:
    """An initialised ``OpenAIProvider`` talking to the simulator."""
    from _openai_compat_helpers import OPENAI_KEY

    from spoon_llm.providers.openai import OpenAIProvider

    provider = OpenAIProvider()
    await provider.initialize({"api_key": OPENAI_KEY, "base_url": sim.openai_base_url, "model": "gpt-4o-mini"})
    yield provider
    await provider.cleanup()
