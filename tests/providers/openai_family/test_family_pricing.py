"""The new providers are priced through the price book: genai-prices' rates for the hosted vendors, free per token
(unless an hourly rate is set) for the local servers."""

from __future__ import annotations

import pytest

from spoon_llm.pricing import LOCAL_PROVIDER_TYPES, PriceBook
from spoon_llm.types import TokenUsage

USAGE = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, total_tokens=2_000_000)


@pytest.mark.parametrize(("provider", "model"), [
    ("azure", "gpt-4o"), ("mistral", "mistral-small-latest"), ("groq", "llama-3.3-70b-versatile"),
    ("xai", "grok-3-mini"), ("cerebras", "llama-3.3-70b"), ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("perplexity", "sonar"),
])
def test_hosted_vendors_are_priced_from_genai_prices(provider: str, model: str) -> None:
    pytest.importorskip("genai_prices", reason="the prices extra (genai-prices) is not installed")
    info = PriceBook().cost(USAGE, model, provider_type=provider)
    assert info is not None and info.total_cost > 0 and info.source.endswith(model)


@pytest.mark.parametrize("provider", ["lmstudio", "llamacpp", "sglang", "tgi"])
def test_local_servers_are_free_per_token(provider: str) -> None:
    assert provider in LOCAL_PROVIDER_TYPES
    info = PriceBook().cost(USAGE, "some-local-model", provider_type=provider)
    assert info is not None and info.total_cost == 0.0 and "self-hosted" in info.source
