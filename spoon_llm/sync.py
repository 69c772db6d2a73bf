"""A blocking facade over ``LLMManager`` for scripts and notebooks.

Calls run on one private event loop in a daemon thread, so they work both in plain scripts and inside a running
loop (Jupyter) without deadlock or ``asyncio.run`` clashes; the manager's clients stay bound to that one loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ValidationError

if TYPE_CHECKING:
    from .manager import LLMManager
    from .types import EmbeddingResponse, LLMResponse, LLMResponseChunk, MessageInput, ToolSpec

__all__ = ["LoopThread", "SyncLLMManager"]

_T = TypeVar("_T")


class LoopThread:
    """An event loop running forever in a daemon thread; ``run(coro)`` blocks until the coroutine is done."""

    def __init__(self, name: str = "spoon-llm-sync") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the private loop and return its result (exceptions propagate)."""
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            coro.close()
            raise ValidationError("a sync spoon-llm call was made from inside its own event loop; await the async "
                                  "method instead")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


class SyncLLMManager:
    """Blocking versions of the manager's methods: ``manager.sync.chat(...)``."""

    def __init__(self, manager: LLMManager) -> None:
        self._manager = manager
        self._runner = LoopThread()

    def chat(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Blocking :meth:`LLMManager.chat`."""
        return self._runner.run(self._manager.chat(messages, **kwargs))

    def chat_with_tools(
        self,
        messages: str | MessageInput | Sequence[MessageInput],
        tools: Sequence[ToolSpec | Mapping[str, Any]],
        **kwargs: Any,
    ) -> LLMResponse:
        """Blocking :meth:`LLMManager.chat_with_tools`."""
        return self._runner.run(self._manager.chat_with_tools(messages, tools, **kwargs))

    def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        """Blocking :meth:`LLMManager.completion`."""
        return self._runner.run(self._manager.completion(prompt, **kwargs))

    def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Blocking :meth:`LLMManager.embed`."""
        return self._runner.run(self._manager.embed(inputs, **kwargs))

    def batch_chat(self, requests: Any, **kwargs: Any) -> list[Any]:
        """Blocking :meth:`LLMManager.batch_chat`."""
        return self._runner.run(self._manager.batch_chat(requests, **kwargs))

    def chat_stream(self, messages: str | MessageInput | Sequence[MessageInput], **kwargs: Any
                    ) -> Iterator[LLMResponseChunk]:
        """Blocking stream: a plain iterator of chunks."""
        stream = self._manager.chat_stream(messages, **kwargs)
        iterator = stream.__aiter__()

        async def next_chunk() -> tuple[bool, Any]:
            try:
                return True, await iterator.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, chunk = self._runner.run(next_chunk())
                if not more:
                    return
                yield chunk
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                self._runner.run(closer())

    def health_check_all(self) -> dict[str, bool]:
        """Blocking :meth:`LLMManager.health_check_all`."""
        return self._runner.run(self._manager.health_check_all())

    def switch_backend(self, name: str, skip_health_check: bool = False) -> dict[str, Any]:
        """Blocking :meth:`LLMManager.switch_backend`."""
        return self._runner.run(self._manager.switch_backend(name, skip_health_check))

    def start(self) -> None:
        """Blocking :meth:`LLMManager.start`."""
        self._runner.run(self._manager.start())

    def close(self) -> None:
        """Close the manager's clients on the private loop, then stop the loop."""
        try:
            self._runner.run(self._manager.cleanup())
        finally:
            self._runner.close()
