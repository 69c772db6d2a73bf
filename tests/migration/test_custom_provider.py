"""A fully custom provider written for ``spoon_ai.llm``: ``@register_provider``, a mapping config, foreign errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from spoon_llm import (
    LLMError,
    LLMProviderInterface,
    LLMResponse,
    ProviderCapability,
    ProviderError,
    ProviderMetadata,
    register_provider,
)
from spoon_llm.schema import Message
from spoon_llm.testing import ProviderSimulator

from .conftest import KEY


def define_provider() -> type[LLMProviderInterface]:
    """The older docs' custom provider: it reads its config as a mapping and calls an OpenAI-style endpoint."""

    @register_provider("legacy_custom", [ProviderCapability.CHAT])
    class LegacyCustomProvider(LLMProviderInterface):
        def __init__(self) -> None:
            self.session: aiohttp.ClientSession | None = None

        async def initialize(self, config: Any) -> None:
            self.api_key = config["api_key"]
            self.model = config.get("model", "custom-default")
            self.base_url = config.get("base_url")
            self.mode = config.get("mode", "normal")  # a setting of its own: the options table
            self.session = aiohttp.ClientSession()

        async def chat(self, messages: list[Message], **kwargs: Any) -> Any:
            assert self.session is not None
            text = messages[-1]["content"] if isinstance(messages[-1], dict) else messages[-1].content
            if text == "break":
                return {}["missing"]  # a bug in the provider: a bare KeyError
            async with self.session.post(f"{self.base_url}/chat/completions",
                                         headers={"Authorization": f"Bearer {self.api_key}"},
                                         json={"model": self.model, "messages": [{"role": "user",
                                                                                 "content": text}]}) as answer:
                body = await answer.json()
            content = body["choices"][0]["message"]["content"]
            if self.mode == "dict":
                return {"content": content, "model": self.model}  # not an LLMResponse
            return LLMResponse(content=content, provider="legacy_custom", model=self.model, finish_reason="stop",
                               native_finish_reason="stop")

        async def chat_stream(self, messages: Any, **kwargs: Any) -> Any:
            for piece in ("Hel", "lo"):
                yield piece  # the older API streamed bare text

        async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
            return await self.chat([Message(role="user", content=prompt)])

        async def chat_with_tools(self, messages: Any, tools: Any, **kwargs: Any) -> LLMResponse:
            raise TypeError("tools are not supported")

        def get_metadata(self) -> ProviderMetadata:
            return ProviderMetadata(name="legacy_custom", available_models=["custom-default"])

        async def health_check(self) -> bool:
            return True

        async def cleanup(self) -> None:
            if self.session is not None:
                await self.session.close()

    return LegacyCustomProvider


def custom_config(sim: ProviderSimulator, **extra: Any) -> dict[str, Any]:
    return {"providers": {"legacy_custom": {"api_key": KEY, "model": "custom-model",
                                            "base_url": sim.openai_base_url, **extra}}}


async def test_the_config_is_a_mapping_with_typed_attributes(sim, make_manager):
    define_provider()
    manager = make_manager(custom_config(sim))
    response = await manager.chat([Message(role="user", content="Hello")], provider="legacy_custom")
    assert response.content == "Simulated reply to: Hello"
    assert response.provider == "legacy_custom"
    recorded = sim.last_request("openai")
    assert recorded.body["model"] == "custom-model"  # config.get("model", ...) read the configured model
    assert recorded.header("authorization") is not None


async def test_provider_settings_of_its_own_go_through_options(sim, make_manager):
    define_provider()
    manager = make_manager(custom_config(sim, options={"mode": "dict"}))
    response = await manager.chat("Hello", provider="legacy_custom")
    assert isinstance(response, LLMResponse)  # a dict answer became ours
    assert response.content == "Simulated reply to: Hello"


async def test_a_bare_exception_from_the_provider_becomes_a_provider_error(sim, make_manager):
    define_provider()
    manager = make_manager(custom_config(sim))
    with pytest.raises(ProviderError, match="KeyError") as caught:
        await manager.chat("break", provider="legacy_custom", fallback=False)
    assert isinstance(caught.value, LLMError)
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(LLMError, match="TypeError"):
        await manager.chat_with_tools("hi", [], provider="legacy_custom", fallback=False)


async def test_text_streams_become_chunks(sim, make_manager):
    define_provider()
    manager = make_manager(custom_config(sim))
    chunks = [chunk async for chunk in manager.chat_stream("hi", provider="legacy_custom")]
    assert [c.delta for c in chunks] == ["Hel", "lo"]
    assert chunks[-1].content == "Hello"


async def test_a_provider_that_fails_to_initialise_raises_an_llm_error(sim, make_manager):
    define_provider()
    data = custom_config(sim)
    del data["providers"]["legacy_custom"]["api_key"]  # config["api_key"] raises KeyError in initialize
    manager = make_manager(data)
    with pytest.raises(LLMError, match="initialize: KeyError"):
        await manager.chat("Hello", provider="legacy_custom", fallback=False)
    assert sim.request_count == 0


async def test_registry_get_provider_with_a_config_dict(sim):
    cls = define_provider()
    from spoon_llm import get_global_registry

    registry = get_global_registry()
    assert "legacy_custom" in registry.list_providers()
    provider = registry.get_provider("legacy_custom", {"api_key": KEY})
    assert isinstance(provider, cls)
    await provider.initialize({"api_key": KEY, "base_url": sim.openai_base_url})
    try:
        response = await provider.chat([Message(role="user", content="direct")])
    finally:
        await provider.cleanup()
    assert response.content == "Simulated reply to: direct"
