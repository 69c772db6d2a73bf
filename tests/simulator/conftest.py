"""Fixtures for the simulator tests: the plugin's fixtures plus SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import spoon_llm.testing.pytest_plugin as simulator_plugin
from spoon_llm.testing import ProviderSimulator

OPENAI_KEY = "sk-test-openai-key-0001"
ANTHROPIC_KEY = "sk-ant-test-key-0002"
GEMINI_KEY = "AIza-test-gemini-key-0003"


def pytest_configure(config: pytest.Config) -> None:
    # Installed packages register the plugin through their pytest11 entry point; a source checkout
    # does not, and registering it twice would fail.
    if not config.pluginmanager.is_registered(simulator_plugin):
        config.pluginmanager.register(simulator_plugin, "spoon_llm_simulator")


@pytest.fixture
def sim(provider_simulator: ProviderSimulator) -> ProviderSimulator:
    return provider_simulator


@pytest.fixture
async def openai_client(sim: ProviderSimulator) -> AsyncIterator[Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def openrouter_client(sim: ProviderSimulator) -> AsyncIterator[Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=sim.openrouter_base_url, api_key="sk-or-test-key-0004", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def deepseek_client(sim: ProviderSimulator) -> AsyncIterator[Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=sim.deepseek_base_url, api_key="sk-deepseek-key-0005", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def anthropic_client(sim: ProviderSimulator) -> AsyncIterator[Any]:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0)
    yield client
    await client.close()


def make_genai(base_url: str, **options: Any) -> Any:
    from google import genai
    from google.genai import types

    # attempts=1 turns off the SDK's own retries (including its implicit connection-error retry).
    http_options = types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1), **options)
    return genai.Client(api_key=GEMINI_KEY, http_options=http_options)


@pytest.fixture
def genai_factory() -> Any:
    """Build a google-genai client for a base URL (extra ``HttpOptions`` fields as keywords)."""
    return make_genai


@pytest.fixture
async def gemini_client(sim: ProviderSimulator) -> AsyncIterator[Any]:
    client = make_genai(sim.gemini_base_url)
    yield client.aio
    await client.aio.aclose()
