"""``list_models`` on the OpenAI-compatible family: the ids each vendor's ``GET /models`` lists, on both transports."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm.errors import AuthenticationError
from spoon_llm.providers.azure import AzureOpenAIProvider
from spoon_llm.providers.groq import GroqProvider
from spoon_llm.providers.mistral import MistralProvider
from spoon_llm.providers.openai import OpenAIProvider
from spoon_llm.providers.xai import XAIProvider
from spoon_llm.testing import Fault, ProviderSimulator

KEY = "sk-list-models-0001"


def _settings(vendor: str, sim: ProviderSimulator) -> dict[str, Any]:
    if vendor == "openai":
        return {"api_key": KEY, "base_url": sim.openai_base_url}
    if vendor == "azure":
        return {"api_key": KEY, "base_url": sim.azure_endpoint, "api_version": "2024-10-21"}
    return {"api_key": KEY, "base_url": sim.compatible_base_url(vendor)}


@pytest.mark.parametrize(("vendor", "cls", "expected"), [
    ("openai", OpenAIProvider, "gpt-4.1-mini"),
    ("azure", AzureOpenAIProvider, "gpt-4.1-mini"),
    ("mistral", MistralProvider, "mistral-small-latest"),
    ("groq", GroqProvider, "llama-3.3-70b-versatile"),
    ("xai", XAIProvider, "grok-4"),
])
async def test_the_listed_ids_come_back(vendor: str, cls: type[Any], expected: str, sim: ProviderSimulator,
                                        build_provider: Any) -> None:
    provider = await build_provider(cls, **_settings(vendor, sim))
    models = await provider.list_models()
    assert expected in models and all(isinstance(m, str) and m for m in models)
    assert sim.last_request().method == "GET" and sim.last_request().path.rstrip("/").endswith("models")
    assert sim.requests_for(endpoint="chat") == []  # listing spends no tokens


async def test_a_refused_key_is_an_authentication_error(sim: ProviderSimulator, build_provider: Any) -> None:
    provider = await build_provider(OpenAIProvider, **_settings("openai", sim))
    sim.fault("openai", Fault.unauthorized(), times=1)
    with pytest.raises(AuthenticationError):
        await provider.list_models()
