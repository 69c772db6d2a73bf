"""The provider contract: what every provider adapter implements, and how it describes itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .types import (
    EmbeddingResponse,
    LLMResponse,
    LLMResponseChunk,
    MessageInput,
    ToolSpec,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from .config.models import ProviderConfig

__all__ = [
    "LLMProviderInterface",
    "ProviderCapability",
    "ProviderMetadata",
    "StreamCallback",
]


class ProviderCapability(str, Enum):
    """What a provider can do; declared as data so routing never has to guess from class names."""

    CHAT = "chat"
    COMPLETION = "completion"
    TOOLS = "tools"
    STREAMING = "streaming"
    VISION = "vision"
    IMAGE_GENERATION = "image_generation"
    EMBEDDINGS = "embeddings"
    JSON_MODE = "json_mode"
    STRUCTURED_OUTPUT = "structured_output"
    REASONING = "reasoning"
    PROMPT_CACHING = "prompt_caching"
    TOKEN_COUNTING = "token_counting"


class ProviderMetadata(BaseModel):
    """Static facts about a provider: its name, capabilities, limits and models."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    name: str
    version: str = "1.0.0"
    capabilities: list[ProviderCapability] = Field(default_factory=list)
    max_tokens: int | None = None
    supports_system_messages: bool = True
    rate_limits: dict[str, int] = Field(default_factory=dict)
    available_models: list[str] = Field(default_factory=list)
    default_model: str | None = None
    base_url: str | None = None
    requires_api_key: bool = True

    def supports(self, capability: ProviderCapability | str) -> bool:
        """True when the provider declares ``capability``."""
        return ProviderCapability(capability) in self.capabilities


#: Called with each chunk of a stream, in order; may be sync or async.
StreamCallback = Callable[[LLMResponseChunk], Any]


class LLMProviderInterface(ABC):
    """The contract every provider implements. All network operations are async.

    A provider is an adapter to one vendor API for one configured deployment (base URL + key + model). It knows
    nothing of routing, retries or budgets: the manager owns those. Usable as an async context manager::

        async with provider:
            response = await provider.chat([{"role": "user", "content": "Hi"}])
    """

    #: Registry name, set by ``@register_provider``.
    provider_name: str = ""
    #: Capabilities, set by ``@register_provider`` (or declared on the class).
    capabilities: tuple[ProviderCapability, ...] = ()

    @abstractmethod
    async def initialize(self, config: ProviderConfig | Mapping[str, Any]) -> None:
        """Take a configuration and build clients; called once before first use."""

    @abstractmethod
    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send a conversation and return the complete answer."""

    @abstractmethod
    def chat_stream(
        self,
        messages: Sequence[MessageInput],
        callbacks: Sequence[StreamCallback] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[LLMResponseChunk]:
        """Send a conversation and yield the answer as it arrives; the last chunk has kind ``final``."""

    @abstractmethod
    async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        """Complete a bare prompt (the legacy completions endpoint, or one user message through chat)."""

    @abstractmethod
    async def chat_with_tools(
        self,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolSpec | Mapping[str, Any]],
        **kwargs: Any,
    ) -> LLMResponse:
        """Send a conversation with tools the model may call; calls come back in ``LLMResponse.tool_calls``."""

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Embed one text or a batch of texts; providers without embeddings raise ``ValidationError``."""
        from .errors import ValidationError

        raise ValidationError(f"provider {self.provider_name!r} does not support embeddings",
                              provider=self.provider_name)

    @abstractmethod
    def get_metadata(self) -> ProviderMetadata:
        """Static facts about this provider."""

    @abstractmethod
    async def health_check(self) -> bool:
        """True when the provider answers; must not spend tokens where the vendor offers a free endpoint."""

    @abstractmethod
    async def cleanup(self) -> None:
        """Close clients and connection pools."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cleanup()
