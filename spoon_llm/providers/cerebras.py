"""The ``cerebras`` provider: Cerebras Inference's OpenAI-compatible API (``CEREBRAS_API_KEY``).

Reasoning models (gpt-oss, qwen-3, zai-glm) return their reasoning in ``reasoning``, surfaced as
``LLMResponse.reasoning`` and sent back on assistant turns; usage carries ``prompt_tokens_details.cached_tokens``;
Cerebras' ``time_info`` timings are not part of our types and are dropped. No embeddings endpoint.
"""

from __future__ import annotations

from typing import ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["CerebrasProvider"]


class CerebrasProvider(OpenAICompatibleProvider):
    """Cerebras (llama-3.3-70b, gpt-oss-120b, qwen-3-*, zai-glm-*)."""

    provider_name = "cerebras"
    capabilities = builtin_capabilities("cerebras")
    default_base_url: ClassVar[str | None] = "https://api.cerebras.ai/v1"
    default_model: ClassVar[str | None] = "llama-3.3-70b"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "CEREBRAS_API_KEY"
    reasoning_field: ClassVar[str | None] = "reasoning"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = ("llama-3.3-70b", "llama3.1-8b", "gpt-oss-120b", "qwen-3-32b",
                                               "qwen-3-coder-480b", "zai-glm-4.6")
