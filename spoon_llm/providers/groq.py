"""The ``groq`` provider: Groq's OpenAI-compatible API under ``/openai/v1`` (``GROQ_API_KEY``).

Groq's deviations are handled by the shared mapping: older streams report usage only in the last chunk's
``x_groq.usage``; a tool call that fails Groq's validation during a stream arrives as ``event: error`` with an
``{"error": ...}`` payload on a 200 response and raises the mapped error (``tool_use_failed`` ->
:class:`~spoon_llm.errors.InvalidRequestError`, its ``failed_generation`` kept in the error's ``body``), as does
the same failure on a plain answer (400); an unknown model is a 404 ``model_not_found``
(:class:`~spoon_llm.errors.ModelNotFoundError`). Reasoning (``reasoning``, with ``reasoning_format = "parsed"``)
comes back as ``LLMResponse.reasoning``. Groq has no embeddings endpoint.
"""

from __future__ import annotations

from typing import ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["GroqProvider"]


class GroqProvider(OpenAICompatibleProvider):
    """Groq (Llama, Qwen, gpt-oss, compound models on LPUs)."""

    provider_name = "groq"
    capabilities = builtin_capabilities("groq")
    default_base_url: ClassVar[str | None] = "https://api.groq.com/openai/v1"
    default_model: ClassVar[str | None] = "llama-3.3-70b-versatile"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "GROQ_API_KEY"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = (
        "llama-3.3-70b-versatile", "llama-3.1-8b-instant", "meta-llama/llama-4-scout-17b-16e-instruct",
        "meta-llama/llama-4-maverick-17b-128e-instruct", "openai/gpt-oss-120b", "openai/gpt-oss-20b",
        "qwen/qwen3-32b", "groq/compound",
    )
