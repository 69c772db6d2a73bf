"""Strict model resolution: ``model=`` is an alias, ``provider/model``, a configured model or one the provider is
known to serve; anything else is a ``ConfigurationError`` with did-you-mean before anything is sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.errors import ConfigurationError
from spoon_llm.testing import ProviderSimulator

from .conftest import KEY


def config(sim: ProviderSimulator, **extra: Any) -> ConfigurationManager:
    settings: dict[str, Any] = {
        "providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini",
                                 "models": ["ft:gpt-4.1-mini:acme:support"]}},
        "models": {"smart": "openai/gpt-4.1"},
        "pricing": {"house-model": {"input_per_1m": 1.0, "output_per_1m": 2.0}},
    }
    settings.update(extra)
    return ConfigurationManager(settings, env={})


def sent_models(sim: ProviderSimulator) -> list[str | None]:
    return [r.body["model"] for r in sim.requests_for("openai", "chat")]


@pytest.mark.parametrize(("model", "sent"), [
    ("smart", "gpt-4.1"),                                   # an alias from [models]
    ("openai/a-model-from-tomorrow", "a-model-from-tomorrow"),  # provider/model: always sent as written
    ("ft:gpt-4.1-mini:acme:support", "ft:gpt-4.1-mini:acme:support"),  # configured on the provider
    ("gpt-4o", "gpt-4o"),                                   # the price catalogue knows OpenAI serves it
    ("house-model", "house-model"),                         # a [pricing] entry
    ("o3-mini", "o3-mini"),                                 # declared by the provider (its metadata)
])
async def test_names_that_resolve_are_sent(sim: ProviderSimulator, model: str, sent: str) -> None:
    async with LLMManager(config(sim)) as manager:
        response = await manager.chat("hi", model=model)
    assert response.provider == "openai"
    assert sent_models(sim) == [sent]


@pytest.mark.parametrize(("model", "suggestion"), [
    ("smrt", "did you mean 'smart'"),         # a misspelt alias
    ("gpt-4o-mnii", "did you mean 'gpt-4o-mini'"),  # a misspelt catalogue model
    ("sonnet", ""),                           # the old quick start's alias that no configuration defines
])
async def test_unknown_names_are_refused_before_anything_is_sent(
        sim: ProviderSimulator, model: str, suggestion: str) -> None:
    async with LLMManager(config(sim)) as manager:
        with pytest.raises(ConfigurationError) as caught:
            await manager.chat("hi", model=model)
    message = str(caught.value)
    assert f"unknown model {model!r}" in message and "strict_models = false" in message
    assert f"'openai/{model}'" in message   # the fix: how to send it anyway
    assert suggestion in message
    assert caught.value.key == "model"
    assert sim.request_count == 0


async def test_a_named_provider_with_a_model_is_as_explicit_as_provider_slash_model(sim: ProviderSimulator) -> None:
    async with LLMManager(config(sim)) as manager:
        await manager.chat("hi", provider="openai", model="a-model-from-tomorrow")
    assert sent_models(sim) == ["a-model-from-tomorrow"]


async def test_strict_models_false_lets_unknown_names_through(sim: ProviderSimulator) -> None:
    async with LLMManager(config(sim, strict_models=False)) as manager:
        await manager.chat("hi", model="sonnet")
    assert sent_models(sim) == ["sonnet"]


async def test_a_self_hosted_server_takes_any_name_but_a_near_miss_of_an_alias(sim: ProviderSimulator) -> None:
    settings = ConfigurationManager({
        "default_provider": "local",
        "providers": {"local": {"type": "vllm", "base_url": sim.openai_base_url, "model": "served"}},
        "models": {"smart": "local/served"}}, env={})
    async with LLMManager(settings) as manager:
        await manager.chat("hi", model="my-own-finetune")  # nothing can say what the server loaded
        with pytest.raises(ConfigurationError, match="did you mean 'smart'"):
            await manager.chat("hi", model="smrt")
    assert sent_models(sim) == ["my-own-finetune"]


async def test_without_a_provider_section_an_env_key_alone_does_not_make_sonnet_an_openai_model(
        sim: ProviderSimulator) -> None:
    # The case: only OPENAI_API_KEY set, the quick start's model="sonnet" went to OpenAI as a model name.
    settings = ConfigurationManager(env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": sim.openai_base_url})
    async with LLMManager(settings) as manager:
        with pytest.raises(ConfigurationError, match="unknown model 'sonnet'"):
            await manager.chat("hi", model="sonnet")
    assert sim.request_count == 0


def test_the_sync_facade_raises_the_same_error() -> None:
    with ProviderSimulator() as sim:
        with LLMManager(config(sim)) as manager, pytest.raises(ConfigurationError, match="did you mean 'smart'"):
            manager.sync.chat("hi", model="smrt")
        assert sim.request_count == 0
