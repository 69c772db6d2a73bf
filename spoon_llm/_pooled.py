"""The text client of the older pooled module: ``client = manager.get_client()``; answers as plain strings.

Code written against that module moves over with an import rename: ``await client.chat("Hello")``,
``await client.complete(messages, temperature=0.7, max_tokens=200)`` and ``async for text in
client.stream_complete(messages)`` run through the manager (routing, fallback, budgets, costs all apply).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import LLMManager

__all__ = ["TextClient"]


class TextClient:
    """A manager's answers as text (see the module docstring)."""

    __slots__ = ("manager",)

    def __init__(self, manager: LLMManager) -> None:
        self.manager = manager

    async def chat(self, messages: Any, **kwargs: Any) -> str:
        """The answer's text to ``messages`` (a string, a message, or a list of them)."""
        return (await self.manager.chat(messages, **kwargs)).content

    async def complete(self, messages: Any, **kwargs: Any) -> str:
        """:meth:`chat` under the older name (``temperature=``, ``max_tokens=``... as for the manager)."""
        return await self.chat(messages, **kwargs)

    async def stream_complete(self, messages: Any, **kwargs: Any) -> AsyncIterator[str]:
        """The answer's text as it streams, piece by piece."""
        stream = self.manager.chat_stream(messages, **kwargs)
        try:
            async for chunk in stream:
                if chunk.delta:
                    yield chunk.delta
        finally:
            closer = getattr(stream, "aclose", None)  # a stream left early is closed, its request settled
            if closer is not None:
                await closer()

    def __repr__(self) -> str:
        return f"TextClient({self.manager!r})"
