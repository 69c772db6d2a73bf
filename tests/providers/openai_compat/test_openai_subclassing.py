"""Extending and configuring: the older README's subclass pattern, a purely configured endpoint, the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from spoon_llm import (
    ConfigurationManager,
    ProviderCapability,
    ProviderMetadata,
    get_global_registry,
    register_provider,
)
from spoon_llm.providers.openai_compatible_provider import OpenAICompatibleProvider
from spoon_llm.testing import ECHO_PREFIX, ProviderSimulator


async def test_the_older_readme_subclass_pattern(sim: ProviderSimulator) -> None:
    # Written exactly as the older README shows it.
    @register_provider("custom_openai", [ProviderCapability.CHAT, ProviderCapability.COMPLETION])
    class CustomOpenAIProvider(OpenAICompatibleProvider):
        def __init__(self) -> None:
            super().__init__()
            self.provider_name = "custom_openai"
            self.default_base_url = "https://api.custom-provider.com/v1"  # type: ignore[misc]
            self.default_model = "custom-model"  # type: ignore[misc]

        def get_additional_headers(self, config: Any) -> dict[str, str]:
            # Add any custom headers your provider needs
            return {"Custom-Header": config.get("custom_value", "default")}

        def get_metadata(self) -> ProviderMetadata:
            return ProviderMetadata(
                name="custom_openai",
                version="1.0.0",
                capabilities=[ProviderCapability.CHAT, ProviderCapability.COMPLETION],
                max_tokens=8192,
                supports_system_messages=True,
            )

    registry = get_global_registry()
    assert registry.get_provider_class("custom_openai") is CustomOpenAIProvider
    provider = await registry.get_initialized_provider(
        "custom_openai", {"api_key": "sk-custom-key-000001", "base_url": sim.openai_base_url, "custom_value": "v1"})
    try:
        response = await provider.chat([{"role": "user", "content": "hello"}])
        assert response.content == ECHO_PREFIX + "hello" and response.provider == "custom_openai"
        sent = sim.last_request("openai")
        assert sent.header("custom-header") == "v1" and sent.body["model"] == "custom-model"
        assert provider.get_metadata().max_tokens == 8192
        assert isinstance(provider, CustomOpenAIProvider)
        assert provider.config.options == {"custom_value": "v1"}  # free-form keys of the older API are kept
    finally:
        await provider.cleanup()


async def test_class_attribute_subclass_with_its_own_headers(sim: ProviderSimulator) -> None:
    class Acme(OpenAICompatibleProvider):
        provider_name = "acme"
        default_base_url = sim.openai_base_url
        default_model = "acme-1"

        def get_additional_headers(self, config: Any) -> dict[str, str]:
            return {"X-Acme-Region": config.get("region", "eu")}

    provider = Acme()
    await provider.initialize({"options": {"region": "us"}})
    try:
        await provider.chat("hi")
        assert sim.last_request("openai").header("x-acme-region") == "us"
        assert provider.get_metadata().name == "acme"
    finally:
        await provider.cleanup()


async def test_a_purely_configured_endpoint_needs_no_code(sim: ProviderSimulator, tmp_path: Path) -> None:
    (tmp_path / "spoon_llm.toml").write_text(
        "[providers.my-server]\n"
        'type = "openai_compatible"\n'
        f'base_url = "{sim.openai_base_url}"\n'
        'model = "qwen2.5-7b-instruct"\n'
    )
    section = ConfigurationManager(tmp_path / "spoon_llm.toml").load_provider_config("my-server")
    registry = get_global_registry()
    provider = await registry.get_initialized_provider(section.provider_type, section)
    try:
        response = await provider.chat("hi")
        assert response.provider == "my-server" and response.content == ECHO_PREFIX + "hi"
        sent = sim.last_request("openai")
        assert sent.body["model"] == "qwen2.5-7b-instruct" and "authorization" not in sent.headers
        chunks = [c async for c in provider.chat_stream("hi")]
        assert chunks[-1].kind == "final" and chunks[-1].provider == "my-server"
        assert await provider.health_check()
    finally:
        await provider.cleanup()


def test_registry_entries_and_capabilities() -> None:
    from spoon_llm.providers.deepseek import DeepSeekProvider
    from spoon_llm.providers.ollama import OllamaProvider
    from spoon_llm.providers.openai import OpenAIProvider
    from spoon_llm.providers.openrouter import OpenRouterProvider
    from spoon_llm.providers.vllm import VLLMProvider

    registry = get_global_registry()
    classes = {"openai_compatible": OpenAICompatibleProvider, "openai": OpenAIProvider,
               "openrouter": OpenRouterProvider, "deepseek": DeepSeekProvider, "vllm": VLLMProvider,
               "ollama": OllamaProvider}
    for name, cls in classes.items():
        assert registry.get_provider_class(name) is cls
        assert cls.provider_name == name
        assert tuple(registry.get_capabilities(name)) == cls.capabilities
    assert VLLMProvider.requires_api_key is False and OllamaProvider.requires_api_key is False
    assert OllamaProvider.default_base_url == "http://localhost:11434/v1"
    assert VLLMProvider.default_base_url == "http://localhost:8000/v1"


def test_importing_the_provider_modules_does_not_import_the_sdk() -> None:
    code = (
        "import sys, spoon_llm\n"
        "assert 'openai' not in sys.modules\n"
        "import spoon_llm.providers.openai, spoon_llm.providers.openrouter, spoon_llm.providers.vllm\n"
        "import spoon_llm.providers.deepseek, spoon_llm.providers.ollama\n"
        "assert 'openai' not in sys.modules, 'the SDK loads only when a provider is built'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
