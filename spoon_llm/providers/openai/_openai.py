"""The ``openai`` provider: OpenAI's API (chat, streaming, tools, legacy completions, embeddings).

Reads its key from configuration (``OPENAI_API_KEY`` through the environment layer). Reasoning models (o-series,
gpt-5) get ``max_completion_tokens`` and no non-default temperature/top_p; o1-mini/o1-preview get their system
turns as user turns. Embeddings are requested as base64 (smaller and faster to decode) unless
``encoding_format`` says otherwise. With ``api = "responses"`` chat (and streams, and completions of chat models)
goes through the Responses API instead, exactly as the ``openai_responses`` provider sends it (answers then name
``openai_responses`` as their provider); embeddings, model listing and health checks stay where they are.
"""

from __future__ import annotations

from typing import ClassVar

from .._responses_route import ResponsesRoute
from ._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["OpenAIProvider"]


class OpenAIProvider(ResponsesRoute, OpenAICompatibleProvider):
    """OpenAI, on the native transport (default) or the official SDK (``transport = "sdk"``)."""

    provider_name = "openai"
    capabilities = builtin_capabilities("openai")
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    default_model: ClassVar[str | None] = "gpt-4.1-mini"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    default_embedding_model: ClassVar[str | None] = "text-embedding-3-small"
    embedding_encoding: ClassVar[str | None] = "base64"
    sdk_env_defaults: ClassVar[bool] = True
    known_models: ClassVar[tuple[str, ...]] = (
        "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano",
        "o3", "o3-mini", "o4-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small", "text-embedding-3-large",
    )
