"""Mistral, Groq, xAI, Cerebras and the cheap OpenAI-compatible presets against the simulator, on both transports:
registry resolution, keys and base URLs, Mistral's tool dicts without ``type``, Groq's ``x_groq`` usage, model
discovery on local servers, and a fallback across vendors through ``LLMManager`` for each new provider."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ConfigurationError, ModelNotFoundError
from spoon_llm.manager import LLMManager
from spoon_llm.providers.openai._convert import tools_to_wire
from spoon_llm.registry import LLMProviderRegistry
from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall
from spoon_llm.types import ToolSpec

#: provider -> (default base URL, key variable, needs a key)
PRESETS: dict[str, tuple[str, str, bool]] = {
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY", True),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY", True),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY", True),
    "cerebras": ("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", True),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY", True),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", True),
    "perplexity": ("https://api.perplexity.ai", "PERPLEXITY_API_KEY", True),
    "lmstudio": ("http://localhost:1234/v1", "LMSTUDIO_API_KEY", False),
    "llamacpp": ("http://localhost:8080/v1", "LLAMACPP_API_KEY", False),
    "sglang": ("http://localhost:30000/v1", "SGLANG_API_KEY", False),
    "tgi": ("http://localhost:8080/v1", "TGI_API_KEY", False),
}
NEW = ("azure", "mistral", "groq", "xai", "cerebras")


@pytest.mark.parametrize("name", sorted(PRESETS))
async def test_each_preset_resolves_and_talks_to_the_simulator(name: str, sim: ProviderSimulator,
                                                               transport: str) -> None:
    base_url, key_env, needs_key = PRESETS[name]
    registry = LLMProviderRegistry(load_plugins=False)
    cls: Any = registry.get_provider_class(name)
    assert (cls.default_base_url, cls.api_key_env, cls.requires_api_key) == (base_url, key_env, needs_key)
    config: dict[str, Any] = {"base_url": sim.compatible_base_url(name), "transport": transport, "model": "m-1"}
    if needs_key:
        with pytest.raises(ConfigurationError, match=key_env):
            await registry.get_initialized_provider(name, dict(config))
        config["api_key"] = f"{name}-key-123456789"
    provider: Any = await registry.get_initialized_provider(name, config)
    try:
        response = await provider.chat("hello")
        chunks = [c async for c in provider.chat_stream("hello")]
        assert await provider.health_check() is True
    finally:
        await provider.cleanup()
    assert response.provider == name and response.content == "".join(c.delta for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == response.usage.output_tokens
    records = [r for r in sim.requests_for(name) if r.endpoint == "chat"]
    assert len(records) == 2
    assert records[0].path == "/" + name + sim.compatible_base_url(name).split("/" + name, 1)[1] + "/chat/completions"
    assert ("authorization" in records[0].headers) is needs_key
    assert bool(provider.get_metadata().available_models) is needs_key  # local servers list what they serve


@pytest.mark.parametrize("name", ["lmstudio", "sglang"])
async def test_local_servers_use_the_first_model_they_list(name: str, sim: ProviderSimulator,
                                                           build_provider: Any) -> None:
    registry = LLMProviderRegistry(load_plugins=False)
    provider = await build_provider(registry.get_provider_class(name), base_url=sim.compatible_base_url(name))
    response = await provider.chat("hi")
    assert sim.last_request(name).body["model"] == "local-model" and response.content


async def test_mistral_accepts_tool_dicts_without_type(sim: ProviderSimulator, build_provider: Any) -> None:
    from spoon_llm.providers.mistral import MistralProvider

    tool = {"function": {"name": "get_weather", "description": "Weather in a city",
                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    assert ToolSpec.model_validate(tool).name == "get_weather"
    assert tools_to_wire([tool]) == [{"type": "function", **tool}]
    provider = await build_provider(MistralProvider, api_key="mistral-key-123456789",
                                    base_url=sim.compatible_base_url("mistral"))
    sim.script("mistral", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    response = await provider.chat_with_tools([{"role": "user", "content": "Weather in Paris?"}], tools=[tool],
                                              tool_choice="any")
    assert response.tool_calls[0].function.name == "get_weather"
    body = sim.last_request("mistral").body
    assert body["tools"][0]["type"] == "function" and body["tool_choice"] == "any"
    assert "stream_options" not in body


async def test_groq_stream_usage_comes_from_x_groq(sim: ProviderSimulator, build_provider: Any) -> None:
    from spoon_llm.providers.groq import GroqProvider

    provider = await build_provider(GroqProvider, api_key="gsk_key_123456789",
                                    base_url=sim.compatible_base_url("groq"))
    sim.script("groq", Reply(text="fast answer"))
    chunks = [c async for c in provider.chat_stream("hi", include_usage=False)]
    assert "".join(c.delta for c in chunks) == "fast answer"
    usage = chunks[-1].usage
    assert usage is not None and usage.output_tokens > 0 and "x_groq" not in chunks[-1].metadata


async def test_groq_model_not_found(sim: ProviderSimulator, build_provider: Any) -> None:
    from spoon_llm.providers.groq import GroqProvider

    provider = await build_provider(GroqProvider, api_key="gsk_key_123456789",
                                    base_url=sim.compatible_base_url("groq"))
    sim.fault("groq", Fault(status=404))
    with pytest.raises(ModelNotFoundError) as info:
        await provider.chat("hi", model="llama-9000")
    assert info.value.error_code == "model_not_found"


@pytest.mark.parametrize("vendor", NEW)
async def test_fallback_from_each_new_provider_to_openai(vendor: str, sim: ProviderSimulator, transport: str) -> None:
    primary: dict[str, Any] = {"type": vendor, "api_key": f"{vendor}-key-123456789", "model": "model-primary",
                               "transport": transport}
    primary["base_url"] = sim.azure_endpoint if vendor == "azure" else sim.compatible_base_url(vendor)
    data = {
        "providers": {
            "primary": primary,
            "backup": {"type": "openai", "api_key": "sk-backup-123456789", "model": "model-backup",
                       "base_url": sim.openai_base_url, "transport": transport},
        },
        "fallback_chain": ["primary", "backup"],
        "retry": {"max_retries": 0},
    }
    manager = LLMManager(ConfigurationManager(data, env={}))
    try:
        sim.fault(vendor, Fault.unavailable(), times=2)
        response = await manager.chat("hi")
        chunks = [c async for c in manager.chat_stream("hi")]
    finally:
        await manager.cleanup()
    assert response.fallback_path == ["primary", "backup"] and response.provider == "openai"
    assert chunks[-1].metadata["fallback_path"] == ["primary", "backup"]
    assert len(sim.requests_for(vendor, "chat")) == 2 and len(sim.requests_for("openai", "chat")) == 2
