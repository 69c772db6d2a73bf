"""An offline provider that echoes the last user message; the template for a spoon-llm provider plugin."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from spoon_llm import (
    EmbeddingResponse,
    LLMProviderInterface,
    LLMResponse,
    LLMResponseChunk,
    ProviderCapability,
    ProviderMetadata,
    TokenUsage,
    hookimpl,
)
from spoon_llm.interface import StreamCallback
from spoon_llm.types import MessageInput, ToolSpec, to_messages

__all__ = ["EchoProvider", "spoon_llm_register_providers"]

CAPABILITIES = [ProviderCapability.CHAT, ProviderCapability.STREAMING, ProviderCapability.EMBEDDINGS]


class EchoProvider(LLMProviderInterface):
    """Answers ``echo: <last user message>``."""

    provider_name = "echo"

    def __init__(self) -> None:
        self.model = "echo-1"

    async def initialize(self, config: Any) -> None:
        model = getattr(config, "model", None) or (config.get("model") if isinstance(config, Mapping) else None)
        self.model = model or "echo-1"

    def _answer(self, messages: Sequence[MessageInput]) -> tuple[str, TokenUsage]:
        conversation = to_messages(messages)
        last = next((m.text for m in reversed(conversation) if m.role == "user"), "")
        text = f"echo: {last}"
        prompt_tokens = sum(len(m.text.split()) for m in conversation)
        return text, TokenUsage(input_tokens=prompt_tokens, output_tokens=len(text.split()))

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        text, usage = self._answer(messages)
        return LLMResponse(content=text, provider="echo", model=kwargs.get("model") or self.model,
                           finish_reason="stop", native_finish_reason="stop", usage=usage)

    async def chat_stream(
        self, messages: Sequence[MessageInput], callbacks: Sequence[StreamCallback] | None = None, **kwargs: Any
    ) -> AsyncIterator[LLMResponseChunk]:
        text, usage = self._answer(messages)
        content = ""
        for i, word in enumerate(text.split(" ")):
            delta = word if i == 0 else " " + word
            content += delta
            chunk = LLMResponseChunk(delta=delta, content=content, provider="echo", model=self.model)
            for callback in callbacks or ():
                callback(chunk)
            yield chunk
        yield LLMResponseChunk(kind="final", content=content, provider="echo", model=self.model,
                               finish_reason="stop", native_finish_reason="stop", usage=usage)

    async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        return await self.chat([{"role": "user", "content": prompt}], **kwargs)

    async def chat_with_tools(
        self, messages: Sequence[MessageInput], tools: Sequence[ToolSpec | Mapping[str, Any]], **kwargs: Any
    ) -> LLMResponse:
        return await self.chat(messages, **kwargs)

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        vectors = [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts]
        return EmbeddingResponse(embeddings=vectors, provider="echo", model=self.model)

    def get_metadata(self) -> ProviderMetadata:
        return ProviderMetadata(name="echo", capabilities=CAPABILITIES, requires_api_key=False,
                                available_models=["echo-1"], default_model="echo-1")

    async def health_check(self) -> bool:
        return True

    async def cleanup(self) -> None:
        return None


@hookimpl
def spoon_llm_register_providers(register: Any) -> None:
    """Register the echo provider lazily (the class is imported only when first used)."""
    register("echo", "spoon_llm_echo:EchoProvider", capabilities=CAPABILITIES)
