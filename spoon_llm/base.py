"""``LLMBase``: the object the older ``LLMFactory`` API returned, backed by an :class:`LLMManager`.

New code should use :class:`spoon_llm.manager.LLMManager` directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import LLMManager
    from .types import LLMResponse, LLMResponseChunk, MessageInput, ToolSpec

__all__ = ["LLMBase", "PendingReply"]


class PendingReply:
    """A reply asked for from inside a running event loop: ``await`` it, or use it as text.

    Awaiting is the older API's awaitable use; using it as text waits through the blocking facade. The request is
    sent on first use, once.
    """

    __slots__ = ("_make", "_make_sync", "_text")

    def __init__(self, make: Callable[[], Coroutine[Any, Any, str]], make_sync: Callable[[], str]) -> None:
        self._make = make  # the request, awaited
        self._make_sync = make_sync  # the same request through the manager's blocking facade
        self._text: str | None = None

    def __await__(self) -> Generator[Any, None, str]:
        return self._resolve().__await__()

    async def _resolve(self) -> str:
        if self._text is None:
            self._text = await self._make()
        return self._text

    @property
    def text(self) -> str:
        """The reply's text (blocks until it arrived)."""
        if self._text is None:
            self._text = self._make_sync()
        return self._text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return repr(self.text) if self._text is not None else "PendingReply(<not awaited>)"

    def __eq__(self, other: object) -> bool:
        return self.text == (other.text if isinstance(other, PendingReply) else other)

    def __hash__(self) -> int:
        return hash(self.text)

    def __len__(self) -> int:
        return len(self.text)

    def __contains__(self, item: str) -> bool:
        return item in self.text

    def __add__(self, other: str) -> str:
        return self.text + other

    def __radd__(self, other: str) -> str:
        return other + self.text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.text, name)  # str methods: .upper(), .split(), ...


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LLMBase:
    """One provider behind the older interface: ``chat("Hello")`` returns text, ``achat`` is its async twin.

    Inside a running event loop ``chat`` / ``completion`` return a :class:`PendingReply`, so the older API's
    ``await llm.chat("Hello")`` works there as well.
    """

    def __init__(self, manager: LLMManager, provider: str) -> None:
        self.manager = manager
        self.provider = provider

    def chat(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any) -> str | PendingReply:
        """Blocking chat returning the answer's text; inside a running loop, a :class:`PendingReply` to await."""
        def blocking() -> str:
            return self.manager.sync.chat(messages, provider=self.provider, **kwargs).content

        if _in_loop():
            return PendingReply(lambda: self.achat(messages, **kwargs), blocking)
        return blocking()

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

    def completion(self, prompt: str, **kwargs: Any) -> str | PendingReply:
        """Blocking completion returning the text; inside a running loop, a :class:`PendingReply` to await."""
        def blocking() -> str:
            return self.manager.sync.completion(prompt, provider=self.provider, **kwargs).content

        if _in_loop():
            return PendingReply(lambda: self.acompletion(prompt, **kwargs), blocking)
        return blocking()

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
