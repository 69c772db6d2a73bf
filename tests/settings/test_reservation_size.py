"""How much a request reserves against a budget: the call's ``max_tokens``, else the section's, else what the
model's context window leaves after the prompt, capped by ``[budget] default_max_tokens`` — not a flat 4,096.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.errors import BudgetExceededError
from spoon_llm.testing import ProviderSimulator, Reply, Usage

from .conftest import KEY

# Input free, $100 per million output tokens: one output token reserves $0.0001.
PER_OUTPUT_TOKEN = 100.0 / 1_000_000


def settings(sim: ProviderSimulator, limit: float, *, budget: dict[str, Any] | None = None,
             **section: Any) -> ConfigurationManager:
    return ConfigurationManager({
        "providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": "house-model",
                                 **section}},
        "pricing": {"house-model": {"input_per_1m": 0.0, "output_per_1m": 100.0}},
        "budget": {"limit": limit, **(budget or {})}}, env={})


async def refusal(sim: ProviderSimulator, config: ConfigurationManager, **kwargs: Any) -> BudgetExceededError:
    async with LLMManager(config) as manager:
        with pytest.raises(BudgetExceededError) as caught:
            await manager.chat("hello", **kwargs)
    assert sim.request_count == 0
    return caught.value


def assumed_output(error: BudgetExceededError) -> int:
    found = re.search(r"it assumes (\d+) output tokens", str(error))
    assert found, str(error)
    return int(found.group(1))


async def test_without_max_tokens_the_context_window_bounds_the_reservation(sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="ok", usage=Usage(input_tokens=3, output_tokens=10)))
    # 4,096 output tokens would reserve $0.41; a 1,000-token window leaves under 1,000: under $0.10 fits $0.2.
    async with LLMManager(settings(sim, 0.2, context_window=1000)) as manager:
        response = await manager.chat("hello")
    assert response.content == "ok" and sim.request_count == 1

    sim.reset()
    error = await refusal(sim, settings(sim, 0.05, context_window=1000))
    output = assumed_output(error)
    assert 900 < output < 1000                          # the window less the prompt's estimate
    assert error.requested == pytest.approx(output * PER_OUTPUT_TOKEN)
    assert "what the model's context window leaves" in str(error)
    assert "pass max_tokens=" in str(error)              # the refusal says which max_tokens would fit


async def test_the_configurable_cap_bounds_a_large_window(sim: ProviderSimulator) -> None:
    error = await refusal(sim, settings(sim, 0.01, context_window=200_000, budget={"default_max_tokens": 500}))
    assert assumed_output(error) == 500 and error.requested == pytest.approx(500 * PER_OUTPUT_TOKEN)
    assert "pass max_tokens=100 or less" in str(error)  # $0.01 left at $0.0001 a token, input free
    assert "[budget] default_max_tokens = 500" in str(error)


async def test_a_max_tokens_sent_to_the_provider_is_what_is_reserved(sim: ProviderSimulator) -> None:
    call = await refusal(sim, settings(sim, 0.01, context_window=1000), max_tokens=300)
    assert assumed_output(call) == 300 and "this call's max_tokens" in str(call)
    section = await refusal(sim, settings(sim, 0.01, context_window=1000, max_tokens=700))
    assert assumed_output(section) == 700


async def test_the_price_catalogue_knows_a_models_window(sim: ProviderSimulator) -> None:
    # gpt-4's window is 8,192 tokens in genai-prices; a 6,000-word prompt leaves well under the 4,096 cap.
    config = ConfigurationManager({
        "providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4"}},
        "budget": {"limit": 0.01}}, env={})
    async with LLMManager(config) as manager:
        with pytest.raises(BudgetExceededError) as caught:
            await manager.chat("word " * 6000)
    output = assumed_output(caught.value)
    assert output < 4096
    prompt = 8192 - output                               # the estimate of the prompt the window was cut by
    assert prompt > 4096
    assert caught.value.requested == pytest.approx(prompt * 30e-6 + output * 60e-6)  # gpt-4: $30 / $60 per 1M
    assert sim.request_count == 0
