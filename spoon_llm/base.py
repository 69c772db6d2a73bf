"""``LLMBase``: the object the older ``LLMFactory`` API returned, backed by an :class:`LLMManager`.

New code should use :class:`spoon_llm.manager.LLMManager` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import LLMManager
    from .types import LLMResponse, LLMResponseChunk, MessageInput, ToolSpec

__all__ = ["LLMBase"]


class LLMBase:
    """One provider behind the older interface: ``chat("Hello")`` returns text, ``achat`` is its async twin."""

    def __init__(self, manager: LLMManager, provider: str) -> None:
        self.manager = manager
        self.provider = provider

    def chat(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any) -> str:
        """Blocking chat; returns the answer's text."""
        return self.manager.sync.chat(messages, provider=self.provider, **kwargs).content

    async def achat(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any) -> str:
        """Async chat; returns the answer's text."""
        return (await self.manager.chat(messages, provider=self.provider, **kwargs)).content

    async def ask(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Async chat returning the full :class:`LLMResponse`."""
        return await self.manager.chat(messages, provider=self.provider, **kwargs)

    async def ask_tool(
        self,
        messages: str | MessageInput | Sequence[MessageInput],
        tools: Sequence[ToolSpec | Mapping[str, Any]],
        **kwargs: Any,
    ) -> LLMResponse:
        """Async chat with tools, returning the full response with ``tool_calls``."""
        return await self.manager.chat_with_tools(messages, tools, provider=self.provider, **kwargs)

    def completion(self, prompt: str, **kwargs: Any) -> str:
        """Blocking completion; returns the text."""
        return self.manager.sync.completion(prompt, provider=self.provider, **kwargs).content

    async def acompletion(self, prompt: str, **kwargs: Any) -> str:
        """Async completion; returns the text."""
        return (await self.manager.completion(prompt, provider=self.provider, **kwargs)).content

    async def astream(
        self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any
    ) -> AsyncIterator[LLMResponseChunk]:
        """Async stream of chunks."""
        async for chunk in self.manager.chat_stream(messages, provider=self.provider, **kwargs):
            yield chunk

    def close(self) -> None:
        """Close the clients this object opened."""
        self.manager.sync.close()

    def __repr__(self) -> str:
        return f"LLMBase(provider={self.provider!r})"
