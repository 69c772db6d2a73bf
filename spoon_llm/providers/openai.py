"""The ``openai`` provider: OpenAI's API (chat, streaming, tools, legacy completions, embeddings).

Reads its key from configuration (``OPENAI_API_KEY`` through the environment layer). Reasoning models (o-series,
gpt-5) get ``max_completion_tokens`` and no non-default temperature/top_p; o1-mini/o1-preview get their system
turns as user turns. Embeddings are requested as base64 (smaller and faster to decode) unless
``encoding_format`` says otherwise. With ``api = "responses"`` chat (and streams, and completions of chat models)
goes through the Responses API instead, exactly as the ``openai_responses`` provider sends it (answers then name
``openai_responses`` as their provider); embeddings, model listing and health checks stay where they are.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

from ..types import LLMResponse, LLMResponseChunk
from .openai_compatible_provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatibleProvider):
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
    #: The Responses API deployment that serves chat when ``api = "responses"`` (``None``: Chat Completions).
    _responses: Any = None

    async def _setup(self) -> None:
        await super()._setup()
        if self.config.api == "responses":
            from .openai_responses import OpenAIResponsesProvider  # its own mapping and transports, loaded on use

            responses = OpenAIResponsesProvider()
            try:
                await responses.initialize(self.config)
            except BaseException:
                await super()._close()  # a half-built deployment must not leave a pool open
                raise
            self._responses = responses

    async def _close(self) -> None:
        responses, self._responses = self._responses, None
        try:
            if responses is not None:
                await responses.cleanup()
        finally:
            await super()._close()

    async def chat(self, messages: Any, **kwargs: Any) -> LLMResponse:
        """Send a conversation and return the complete answer (through the Responses API with ``api = "responses"``)."""
        responses = self._responses
        if responses is not None:
            answer: LLMResponse = await responses.chat(messages, **kwargs)
            return self._finish(answer)
        return await super().chat(messages, **kwargs)

    async def _stream(self, messages: Any, **kwargs: Any) -> AsyncGenerator[LLMResponseChunk, None]:
        responses = self._responses
        stream = super()._stream(messages, **kwargs) if responses is None else responses.chat_stream(messages, **kwargs)
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                yield chunk
