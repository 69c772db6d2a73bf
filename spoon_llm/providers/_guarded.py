"""Third-party providers behind a guard: whatever they raise or return, the manager sees our types.

Providers written for the older ``spoon_ai.llm`` API (or any plugin) may raise ``KeyError``, ``TypeError`` or an
SDK's own exception, or return a dict or a string. :class:`GuardedProvider` wraps such an instance: exceptions
that are not an :class:`~spoon_llm.errors.LLMError` become a :class:`~spoon_llm.errors.ProviderError` (the
original chained as its cause, scrubbed of keys by :func:`~spoon_llm.errors.safe_cause`), and answers become
:class:`~spoon_llm.types.LLMResponse` objects. The built-in providers are never wrapped: they map their errors
themselves and sit on the hot path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..errors import LLMError, ProviderError, safe_cause
from ..interface import LLMProviderInterface, ProviderMetadata
from ..types import EmbeddingResponse, LLMResponse, LLMResponseChunk

__all__ = ["GuardedProvider", "guard_provider"]


def guard_provider(instance: LLMProviderInterface) -> LLMProviderInterface:
    """``instance`` itself for a built-in provider, else wrapped in a :class:`GuardedProvider`."""
    if type(instance).__module__.startswith("spoon_llm.") or isinstance(instance, GuardedProvider):
        return instance
    return GuardedProvider(instance)


class GuardedProvider(LLMProviderInterface):
    """Forwards every call to ``inner``, turning foreign exceptions and answers into ours."""

    def __init__(self, inner: LLMProviderInterface) -> None:
        self.inner = inner
        self.provider_name = getattr(inner, "provider_name", "") or type(inner).__name__

    def __getattr__(self, name: str) -> Any:
        # Attributes the guard does not define (the provider's own settings and helpers).
        return getattr(self.inner, name)

    def _error(self, exc: Exception, operation: str) -> ProviderError:
        name = self.provider_name
        return ProviderError(f"provider {name!r} failed in {operation}: {type(exc).__name__}: {exc}",
                             provider=name, error_type=type(exc).__name__)

    def _response(self, result: Any, operation: str) -> LLMResponse:
        if isinstance(result, LLMResponse):
            return result
        try:
            if isinstance(result, str):
                return LLMResponse(content=result, provider=self.provider_name)
            if isinstance(result, Mapping):
                return LLMResponse.model_validate({"provider": self.provider_name, **result})
        except Exception as exc:
            raise self._error(exc, operation) from safe_cause(exc)
        raise ProviderError(f"provider {self.provider_name!r} returned {type(result).__name__} from {operation}; "
                            "expected an LLMResponse", provider=self.provider_name)

    async def initialize(self, config: Any) -> None:
        """Initialise the wrapped provider."""
        try:
            await self.inner.initialize(config)
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "initialize") from safe_cause(exc)

    async def chat(self, messages: Sequence[Any], **kwargs: Any) -> LLMResponse:
        """Chat through the wrapped provider."""
        try:
            result = await self.inner.chat(messages, **kwargs)
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "chat") from safe_cause(exc)
        return self._response(result, "chat")

    async def chat_stream(self, messages: Sequence[Any], callbacks: Sequence[Callable[[LLMResponseChunk], Any]] | None
                          = None, **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        """Stream through the wrapped provider."""
        text = ""
        try:
            if callbacks is not None:  # older providers' chat_stream may not take it
                kwargs["callbacks"] = callbacks
            stream = self.inner.chat_stream(messages, **kwargs)
            async for chunk in stream:
                if isinstance(chunk, str):  # the older API streamed bare text deltas
                    text += chunk
                    chunk = LLMResponseChunk(content=text, delta=chunk, provider=self.provider_name)
                yield chunk
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "chat_stream") from safe_cause(exc)

    async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        """Complete through the wrapped provider."""
        try:
            result = await self.inner.completion(prompt, **kwargs)
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "completion") from safe_cause(exc)
        return self._response(result, "completion")

    async def chat_with_tools(self, messages: Sequence[Any], tools: Sequence[Any], **kwargs: Any) -> LLMResponse:
        """Chat with tools through the wrapped provider."""
        try:
            result = await self.inner.chat_with_tools(messages, tools, **kwargs)
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "chat_with_tools") from safe_cause(exc)
        return self._response(result, "chat_with_tools")

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Embed through the wrapped provider."""
        try:
            return await self.inner.embed(inputs, **kwargs)
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "embed") from safe_cause(exc)

    def get_metadata(self) -> ProviderMetadata:
        """The wrapped provider's metadata."""
        return self.inner.get_metadata()

    async def health_check(self) -> bool:
        """The wrapped provider's health check; an exception counts as unhealthy."""
        try:
            return bool(await self.inner.health_check())
        except Exception:
            return False

    async def cleanup(self) -> None:
        """Clean the wrapped provider up."""
        try:
            await self.inner.cleanup()
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc, "cleanup") from safe_cause(exc)

    def __repr__(self) -> str:
        return f"GuardedProvider({self.inner!r})"
