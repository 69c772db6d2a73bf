"""The ``openrouter`` provider: OpenRouter's OpenAI-compatible API over hundreds of models.

Model ids name the upstream vendor (``anthropic/claude-3.5-sonnet``, ``openai/gpt-4o``). App attribution headers
``HTTP-Referer`` and ``X-Title`` come from config ``http_referer`` / ``x_title`` (or ``OPENROUTER_HTTP_REFERER`` /
``OPENROUTER_X_TITLE``). OpenRouter extras are kept: ``native_finish_reason``, the serving ``provider``, and the
reported ``cost`` (metadata, and ``LLMResponse.cost``); reasoning (``reasoning``) is surfaced and sent back with
``reasoning_details``; ``: OPENROUTER PROCESSING`` keep-alives are ignored and an in-band ``{"error": ...}`` chunk
in a 200 stream raises the mapped error. OpenRouter-only request fields (``provider``, ``models``, ``transforms``,
``reasoning``, ``usage``) pass through as keywords.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["OpenRouterProvider"]


class OpenRouterProvider(OpenAICompatibleProvider):
    """OpenRouter."""

    provider_name = "openrouter"
    capabilities = builtin_capabilities("openrouter")
    default_base_url: ClassVar[str | None] = "https://openrouter.ai/api/v1"
    default_model: ClassVar[str | None] = "openai/gpt-4o-mini"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "OPENROUTER_API_KEY"
    reasoning_field: ClassVar[str | None] = "reasoning"
    # OpenRouter takes max_tokens for every model and translates it upstream.
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = (
        "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3.5-sonnet", "anthropic/claude-sonnet-4.5",
        "google/gemini-2.5-flash", "deepseek/deepseek-chat", "meta-llama/llama-3.1-70b-instruct",
    )

    def get_additional_headers(self, config: Mapping[str, Any]) -> dict[str, str]:
        """``HTTP-Referer`` and ``X-Title`` (OpenRouter's app attribution), when configured."""
        headers: dict[str, str] = {}
        referer = config.get("http_referer") or os.environ.get("OPENROUTER_HTTP_REFERER")
        title = config.get("x_title") or os.environ.get("OPENROUTER_X_TITLE")
        if referer:
            headers["HTTP-Referer"] = str(referer)
        if title:
            headers["X-Title"] = str(title)
        return headers
