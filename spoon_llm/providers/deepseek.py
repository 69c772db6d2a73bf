"""The ``deepseek`` provider: DeepSeek's OpenAI-compatible API.

``reasoning_content`` (deepseek-reasoner, thinking mode) comes back as ``LLMResponse.reasoning`` and reasoning
deltas in streams, and an assistant turn's ``reasoning`` is sent back as ``reasoning_content`` (DeepSeek wants it
during tool-call loops). Cached prompt tokens are read from ``prompt_cache_hit_tokens``. DeepSeek has no
embeddings endpoint; ``completion`` goes through chat.
"""

from __future__ import annotations

from typing import ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["DeepSeekProvider"]


class DeepSeekProvider(OpenAICompatibleProvider):
    """DeepSeek (deepseek-chat, deepseek-reasoner)."""

    provider_name = "deepseek"
    capabilities = builtin_capabilities("deepseek")
    default_base_url: ClassVar[str | None] = "https://api.deepseek.com"
    default_model: ClassVar[str | None] = "deepseek-chat"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "DEEPSEEK_API_KEY"
    known_models: ClassVar[tuple[str, ...]] = ("deepseek-chat", "deepseek-reasoner")
    reasoning_field: ClassVar[str | None] = "reasoning_content"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    #: DeepSeek's response_format knows "text" and "json_object" only.
    supports_json_schema: ClassVar[bool] = False

    def _legacy_completions(self, model: str) -> bool:
        # DeepSeek's /completions is FIM under /beta only; plain completion goes through chat.
        return bool(self.config.options.get("legacy_completions", False))
