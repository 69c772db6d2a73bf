"""Fixtures for the Azure OpenAI tests: providers pointed at the simulator's Azure endpoint, on each transport.

The OpenAI-compatible tests' helpers are shared through ``sys.path``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

for _folder in (Path(__file__).resolve().parents[1] / "openai_compat",
                Path(__file__).resolve().parents[1] / "openai_family", Path(__file__).resolve().parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from _azure_test_helpers import AZURE_KEY  # noqa: E402

from spoon_llm.providers.azure import AzureOpenAIProvider  # noqa: E402
from spoon_llm.testing import ProviderSimulator  # noqa: E402

ProviderFactory = Callable[..., Awaitable[AzureOpenAIProvider]]


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests state their endpoint, key and version; the machine's Azure variables must not leak in."""
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "AZURE_OPENAI_AD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_provider(sim: ProviderSimulator, build_provider: Callable[..., Awaitable[Any]]) -> ProviderFactory:
    """Build initialised Azure providers pointed at the simulator (on the ``transport`` fixture's transport)."""

    async def factory(**config: Any) -> AzureOpenAIProvider:
        settings = {"api_key": AZURE_KEY, "base_url": sim.azure_endpoint, "model": "gpt-4o", **config}
        provider: AzureOpenAIProvider = await build_provider(AzureOpenAIProvider, **settings)
        return provider

    return factory
