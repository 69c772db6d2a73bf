"""The ``xai`` provider: xAI's OpenAI-compatible API for Grok models (``XAI_API_KEY``).

Usage includes xAI's ``prompt_tokens_details`` (text, image and ``cached_tokens``) and
``completion_tokens_details.reasoning_tokens``; Grok streams repeat a running usage object on every chunk and the
last one wins. Reasoning models return ``reasoning_content``, surfaced as ``LLMResponse.reasoning``.
"""

from __future__ import annotations

from typing import ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["XAIProvider"]


class XAIProvider(OpenAICompatibleProvider):
    """xAI (grok-4, grok-3, grok-3-mini, grok-2-vision...)."""

    provider_name = "xai"
    capabilities = builtin_capabilities("xai")
    default_base_url: ClassVar[str | None] = "https://api.x.ai/v1"
    default_model: ClassVar[str | None] = "grok-3-mini"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "XAI_API_KEY"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = ("grok-4", "grok-3", "grok-3-mini", "grok-2-vision-1212", "grok-2-1212")
